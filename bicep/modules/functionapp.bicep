// The function app: Flex Consumption (FC1, Linux, Python 3.11), user-assigned identity for
// everything (deployment package, host storage, triggers, data access), VNet integration in prod.
// App settings (siteConfig.appSettings, built from the appSettings object below): every setting in local.settings.sample.json with its production value, the
// identity-based trigger connections, and the settings the next features read.
// Not set on purpose (tests/test_bicep.py lists each with its reason): FUNCTIONS_WORKER_RUNTIME
// (Flex takes the runtime from functionAppConfig and rejects the setting), AzureWebJobsStorage
// (replaced by the identity-based AzureWebJobsStorage__* settings), AzureWebJobsFeatureFlags
// (worker indexing is the default for the Python v2 model), DATABASE_ADMIN_URL (migrations run
// as the Entra administrator from an operator/CI machine, never from the app) and
// STORAGE_CONNECTION_STRING (Azurite only; shared keys are disabled, the app uses STORAGE_ACCOUNT_URL).

param name string
param planName string
param location string
param tags object = {}

@description('dev | prod: FOLIO_ENVIRONMENT and the App Configuration label.')
param environmentName string

// --- identity ---------------------------------------------------------------------------
param identityId string
param identityName string
param identityClientId string

// --- host storage and deployment package ---------------------------------------------------
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
param uploadContainerName string

// --- scale ----------------------------------------------------------------------------------
@description('Upper bound of instances Flex Consumption may scale out to (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Concurrent HTTP requests per instance before Flex adds another.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Always-ready instances per trigger group, e.g. [{ name: \'http\', instanceCount: 1 }]; [] scales to zero.')
param alwaysReady array = []

@description('Spread instances over availability zones (Flex Consumption supports it in some regions only).')
param zoneRedundant bool = false

@description('Subnet (delegated to Microsoft.App/environments) for VNet integration; empty = none (dev).')
param subnetId string = ''

// --- services -------------------------------------------------------------------------------
param appInsightsConnectionString string
param keyVaultUri string
param appConfigEndpoint string
param serviceBusNamespace string
param indexQueueName string = 'index-jobs'
@description('The index queue\'s maxDeliveryCount: the app marks a document failed on the last attempt.')
param indexMaxDelivery int = 5
param cosmosEndpoint string
param cosmosDatabaseName string = 'folio'
param cosmosChatContainerName string = 'chat'
param postgresFqdn string
param postgresPort int
param postgresDatabaseName string = 'folio'
@description('Whether the connection goes through PgBouncer (transaction pooling): then no server-side prepares.')
param postgresPooled bool

// --- app behaviour --------------------------------------------------------------------------
param logLevel string = 'INFO'
param databasePoolMax int = 4
@description('`organizations`: work and school accounts of any tenant (issuer checked against the token\'s tid); or one tenant id.')
param authEntraTenantId string = 'organizations'
@description('Comma-separated tenant ids whose users may sign in; empty: every tenant.')
param authAllowedTenants string = ''
@description('Expected audience of bearer tokens: the API app registration\'s application (client) id.')
param authAudience string = ''
param maxRequestBytes int = 1048576
@description('Lifetime of an upload URL (user-delegation SAS), minutes.')
param uploadSasMinutes int = 10
@description('Largest document accepted, bytes.')
param maxUploadBytes int = 52428800
param azureOpenAiEndpoint string
param azureOpenAiEmbeddingDeployment string
param chatProvider string
@description('Chat model deployment on azureOpenAiEndpoint (CHAT_PROVIDER azure-openai).')
param azureOpenAiChatDeployment string
@description('Document Intelligence endpoint for OCR of scans and images; empty: they are refused.')
param documentIntelligenceEndpoint string = ''
@description('Scans with more pages are refused before anything is sent (or billed).')
@minValue(1)
@maxValue(2000)
param documentIntelligenceMaxPages int = 300
@description('Vault of users\' own chat provider keys (the app may write there; not keyVaultUri).')
param chatKeyVaultUri string

@description('Browser origins allowed to call the API directly: exactly the web app\'s origins.')
param corsAllowedOrigins array

// --- billing --------------------------------------------------------------------------------
@description('BILLING_PLANS: JSON of plans with their Stripe price ids and limits (shared/billing/plans.py); empty = the built-in defaults, whose paid plans have no price and cannot be bought.')
param billingPlans string = ''
@description('Days a workspace keeps its paid plan after a failed payment before it is downgraded.')
@minValue(0)
@maxValue(60)
param billingGraceDays int = 7
@description('NCRONTAB of the billing timer: metered usage to Stripe, subscription re-syncs.')
param billingFlushSchedule string = '0 * * * * *'

var appSettings = {
  // Runtime mode.
  FOLIO_ENVIRONMENT: environmentName
  FOLIO_DEV_MODE: 'false'
  FOLIO_LOG_LEVEL: logLevel
  // HTTP streaming (chat answers): the worker serves HTTP functions through the FastAPI extension.
  PYTHON_ENABLE_INIT_INDEXING: '1'

  // Identity-based host storage (no connection string, no keys).
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId

  // Identity-based Service Bus trigger/output connection.
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId

  // The identity DefaultAzureCredential picks (shared/azure_credential.py).
  AZURE_CLIENT_ID: identityClientId

  // PostgreSQL through the built-in PgBouncer, as the identity's own (non-owner) role, with a
  // fresh Entra token as the password of each connection. The role is created after the first
  // deployment (bicep/README.md "Post-deployment"); migrations grant it DML.
  DATABASE_URL: 'postgresql://${identityName}@${postgresFqdn}:${postgresPort}/${postgresDatabaseName}?sslmode=require'
  DATABASE_APP_ROLE: identityName
  DATABASE_ENTRA_AUTH: 'true'
  DATABASE_SERVER_PREPARE: postgresPooled ? 'false' : 'true'
  DATABASE_POOL_MAX: string(databasePoolMax)

  // Authentication in code (shared/identity/): Entra bearer tokens from the web app (MSAL) or API
  // keys. The web app calls this app directly (CORS below); no Static Web Apps backend link. The
  // x-ms-client-principal header is the local dev sign-in only: never trusted where Azure sets
  // WEBSITE_SITE_NAME, whatever FOLIO_DEV_MODE says (a forged one is a 401).
  AUTH_ENTRA_TENANT_ID: authEntraTenantId
  AUTH_ALLOWED_TENANTS: authAllowedTenants
  AUTH_AUDIENCE: authAudience
  MAX_REQUEST_BYTES: string(maxRequestBytes)

  // Configuration sources and telemetry.
  APP_CONFIG_ENDPOINT: appConfigEndpoint
  // Secret settings left unset here are read from this vault by name (shared/config.py): among them
  // DATABASE_CONTEXT_KEY, secret database-context-key, which postprovision.sh creates before the
  // first code deployment and installs in the database. Not a Key Vault reference: one resolved
  // before the secret exists would hand the app the literal reference text as its signing key.
  KEY_VAULT_URL: keyVaultUri
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  // App Insights has local auth disabled: the host authenticates its telemetry with the identity.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

  // Uploads (user-delegation SAS with the identity; no STORAGE_CONNECTION_STRING in Azure) and indexing.
  STORAGE_ACCOUNT_URL: storageBlobEndpoint
  UPLOAD_CONTAINER: uploadContainerName
  UPLOAD_SAS_MINUTES: string(uploadSasMinutes)
  MAX_UPLOAD_BYTES: string(maxUploadBytes)
  INDEX_QUEUE_BACKEND: 'servicebus'
  SERVICEBUS_NAMESPACE: serviceBusNamespace
  INDEX_QUEUE_NAME: indexQueueName
  INDEX_MAX_DELIVERY: string(indexMaxDelivery)
  // OCR for scanned PDFs and images (Azure AI Document Intelligence, prebuilt-layout) with the identity.
  DOCUMENT_INTELLIGENCE_ENDPOINT: documentIntelligenceEndpoint
  DOCUMENT_INTELLIGENCE_MAX_PAGES: string(documentIntelligenceMaxPages)

  // Chat history in Cosmos DB with the identity (the account has local auth disabled: no COSMOS_KEY).
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabaseName
  COSMOS_CHAT_CONTAINER: cosmosChatContainerName
  COSMOS_TIMEOUT_SECONDS: '10'

  // Embeddings and chat (fixed per index: changing model or dimension means re-embedding).
  EMBEDDING_PROVIDER: 'azure-openai'
  AZURE_OPENAI_ENDPOINT: azureOpenAiEndpoint
  AZURE_OPENAI_EMBEDDING_DEPLOYMENT: azureOpenAiEmbeddingDeployment
  EMBEDDING_MODEL: 'text-embedding-3-small'
  EMBEDDING_DIM: '1536'
  CHAT_PROVIDER: chatProvider

  // Chat answers (shared/chat/). OPENAI_API_KEY / ANTHROPIC_API_KEY are not app settings: when
  // CHAT_PROVIDER names that provider, the settings layer reads them from Key Vault (openai-api-key,
  // anthropic-api-key). Users' own keys live in the separate vault CHAT_KEY_VAULT_URL.
  AZURE_OPENAI_CHAT_DEPLOYMENT: azureOpenAiChatDeployment
  OPENAI_BASE_URL: 'https://api.openai.com/v1'
  OPENAI_CHAT_MODEL: 'gpt-4o-mini'
  ANTHROPIC_BASE_URL: 'https://api.anthropic.com'
  ANTHROPIC_CHAT_MODEL: 'claude-3-5-haiku-latest'
  CHAT_TIMEOUT_SECONDS: '30'
  CHAT_MAX_SECONDS: '120'
  CHAT_RATE_LIMIT_BUDGET_SECONDS: '8'
  CHAT_MAX_OUTPUT_TOKENS: '800'
  CHAT_SOURCES: '6'
  CHAT_HISTORY_TURNS: '3'
  CHAT_MAX_TURNS: '100'
  CHAT_KEY_STORE: 'keyvault'
  CHAT_KEY_VAULT_URL: chatKeyVaultUri

  // Billing secrets: Key Vault references (versionless: rotation is picked up without a deploy).
  STRIPE_SECRET_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/stripe-secret-key)'
  STRIPE_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/stripe-webhook-secret)'
  // Billing: plans (empty = built-in defaults), grace period, where Checkout and the Portal return
  // to (the static web app, first of the CORS origins), and the timer schedule the host resolves.
  BILLING_PLANS: billingPlans
  BILLING_GRACE_DAYS: string(billingGraceDays)
  BILLING_RETURN_URL: '${first(corsAllowedOrigins)}/billing'
  BILLING_FLUSH_SCHEDULE: billingFlushSchedule
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  //checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption is offered in some regions only; it is the zoneRedundant parameter (functionZoneRedundant in main.bicep), set per environment.
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_17:Client certificates do not fit: callers are browsers (the web app, with Entra tokens), API-key clients, Event Grid and Stripe, none of which present client certificates.
  //checkov:skip=CKV_AZURE_222:Public network access is needed: the web app calls the API from browsers, Event Grid delivers to the system-key webhook and Stripe to its webhook; every route authenticates in code.
  properties: {
    //checkov:skip=CKV_AZURE_212:Flex Consumption allocates instances per trigger demand and scales to zero; a warm minimum is the alwaysReady parameter, not a fixed App Service worker count.
    //checkov:skip=CKV_AZURE_213:App Service health check rotates unhealthy instances out of a fixed set; Flex Consumption has no fixed instance set (per-trigger, scale-to-zero instances), so there is nothing for it to manage.

    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// App Service authentication stays off (no authsettings resource; off is the platform default): the
// API authenticates every request in code, and the platform's sign-in would sit in front of Event
// Grid's system-key webhook (Unauthorized deliveries). tests/test_bicep.py keeps it that way.

// No publishing with basic (user/password) credentials: deployments use Entra (az/func CLI, OIDC).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostname string = site.properties.defaultHostName
