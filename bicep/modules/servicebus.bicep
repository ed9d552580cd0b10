// Service Bus Standard namespace, Entra-only (no SAS keys), with the index queue.
// Handlers are idempotent and need no ordering (docs/architecture.md, Ingestion), so duplicate
// detection is a cheap first line against double enqueues (message id = blob + etag), not a guarantee.

param name string
param location string
param tags object = {}

@description('Queues the app uses: indexing jobs (billing needs none: Stripe webhooks and a timer).')
param queueNames array = [
  'index-jobs'
]

@description('Deliveries before a message is dead-lettered (the app reads it as INDEX_MAX_DELIVERY).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 5

@description('How long a message lives before it is dead-lettered (ISO 8601).')
param messageTimeToLive string = 'P14D'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queueName in queueNames: {
  parent: namespace
  name: queueName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
    lockDuration: 'PT5M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresSession: false
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}]

output id string = namespace.id
output name string = namespace.name
output maxDeliveryCount int = maxDeliveryCount
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ ; the FQDN is what identity-based
// connections (ServiceBusConnection__fullyQualifiedNamespace) want.
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
