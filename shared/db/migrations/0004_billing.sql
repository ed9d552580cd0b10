-- Billing: each workspace's Stripe customer and subscription state, monthly usage counters, the
-- metering outbox, and the log of Stripe webhook events already applied.
--
-- billing_accounts, usage_counters and meter_outbox are tenant tables like the rest: tenant_id
-- first in every key, RLS forced, the shared tenant_isolation policy. Two extra, narrower SELECT
-- policies let the code that runs without a workspace find the one it needs; each matches nothing
-- unless its transaction-local setting is set, and no request path sets them:
--
-- * billing_account_by_customer (app.stripe_customer_id): the webhook knows a Stripe customer id,
--   not a workspace. It sets the id from a signature-verified event and sees that one account row
--   (the same shape as invitation_own in 0001). A SECURITY DEFINER function would not help here:
--   RLS is forced, so the function's owner is filtered too, and the policy states exactly what is
--   exposed: one row, by an id only Stripe and this row know.
-- * billing_worker (app.billing_worker = 'on'): the billing timer lists pending work across
--   workspaces: meter events not yet sent and accounts waiting for a subscription re-sync. It sees
--   only those rows, and only to list them; every write happens afterwards in the row's own tenant
--   context under tenant_isolation.

CREATE TABLE billing_accounts (
  tenant_id             uuid PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  stripe_customer_id    text,                -- created once per workspace, at its first checkout
  subscription_id       text,                -- the subscription this workspace's plan follows
  subscription_status   text,                -- Stripe's status: active, trialing, past_due, canceled, ...
  subscription_prices   text[] NOT NULL DEFAULT '{}',  -- price ids of its items; the plan derives from them
  subscription_created  timestamptz,         -- Stripe's `created` of that subscription
  current_period_start  timestamptz,
  current_period_end    timestamptz,
  cancel_at_period_end  boolean NOT NULL DEFAULT false,
  -- Out-of-order events: a subscription snapshot is applied only if it is newer than the one held
  -- (event `created`, or the time of a re-fetch), in epoch seconds.
  subscription_version  bigint NOT NULL DEFAULT 0,
  payment_failed_at     timestamptz,         -- start of the grace period: a failed payment not yet made good
  payment_version       bigint NOT NULL DEFAULT 0,     -- same idea for payment outcomes
  sync_requested_at     timestamptz,         -- the timer re-fetches the subscription from Stripe
  checkout_plan         text,                -- the open checkout attempt (idempotency key per attempt)
  checkout_attempt      integer NOT NULL DEFAULT 0,
  checkout_started_at   timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
-- Not unique on purpose: a unique constraint must lead with tenant_id (scale path); Stripe ids are unique.
CREATE INDEX billing_accounts_customer ON billing_accounts (stripe_customer_id) WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX billing_accounts_sync ON billing_accounts (sync_requested_at) WHERE sync_requested_at IS NOT NULL;

-- Monthly usage (UTC calendar months). Quotas are enforced by one statement each: an upsert whose
-- ON CONFLICT ... WHERE used + n <= limit either increments or returns nothing, so concurrent
-- requests can never overshoot.
CREATE TABLE usage_counters (
  tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  meter         text NOT NULL CHECK (meter IN ('pages_indexed', 'searches', 'chat_tokens')),
  period_start  date NOT NULL,
  used          bigint NOT NULL CHECK (used >= 0),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, meter, period_start)
);

-- Metered usage for Stripe, written in the same transaction as the work it bills, then sent by the
-- billing timer as Billing Meter events with identifier 'folio-<outbox_id>', so a resend is
-- recognised by Stripe and never counted twice. Rows are kept after sending (the ledger). No
-- foreign key to tenants: usage already incurred must not vanish with its workspace.
CREATE TABLE meter_outbox (
  tenant_id           uuid NOT NULL,
  outbox_id           uuid NOT NULL,
  meter               text NOT NULL,
  event_name          text NOT NULL,        -- the Stripe meter's event_name
  stripe_customer_id  text NOT NULL,
  value               bigint NOT NULL CHECK (value > 0),
  occurred_at         timestamptz NOT NULL DEFAULT now(),
  source              text,                 -- what incurred it, e.g. document:<id>
  attempts            integer NOT NULL DEFAULT 0,
  next_attempt_at     timestamptz NOT NULL DEFAULT now(),
  last_error          text,
  sent_at             timestamptz,
  PRIMARY KEY (tenant_id, outbox_id)
);
CREATE INDEX meter_outbox_due ON meter_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Stripe events already applied: the webhook inserts the event id in the same transaction as the
-- event's effect, so each id takes effect once and a failed effect leaves no trace to block the
-- redelivery. Not tenant-scoped: it is keyed by Stripe's event id and must be checked before the
-- workspace is known. It holds no tenant data (no payload, no customer or workspace id), so the app
-- role reading it across workspaces learns nothing about any of them.
CREATE TABLE stripe_events (
  event_id       text PRIMARY KEY,
  event_type     text NOT NULL,
  event_created  timestamptz NOT NULL,
  livemode       boolean NOT NULL,
  outcome        text,
  received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received ON stripe_events (received_at);

-- Row-level security -------------------------------------------------------------------------

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['billing_accounts', 'usage_counters', 'meter_outbox'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR ALL USING (tenant_id = folio_current_tenant())'
                   ' WITH CHECK (tenant_id = folio_current_tenant())', t);
  END LOOP;
END $$;

CREATE FUNCTION folio_billing_worker() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT coalesce(current_setting('app.billing_worker', true), '') = 'on' $$;

CREATE POLICY billing_account_by_customer ON billing_accounts FOR SELECT
  USING (stripe_customer_id = NULLIF(current_setting('app.stripe_customer_id', true), ''));
CREATE POLICY billing_worker ON billing_accounts FOR SELECT
  USING (folio_billing_worker() AND sync_requested_at IS NOT NULL);
CREATE POLICY billing_worker ON meter_outbox FOR SELECT
  USING (folio_billing_worker() AND sent_at IS NULL);
