-- Databases migrated before 0002 was emptied still hold the local queue stand-in's table; production
-- never used it (Service Bus is the queue there). The local host recreates it for itself on start.
DROP TABLE IF EXISTS local_queue;
