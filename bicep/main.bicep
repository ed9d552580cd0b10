// Folio production deployment (resource-group scope). One module per concern under modules/;
// per-environment values in params/<env>.parameters.json (az deployment) or main.parameters.json
// (azd, from its environment). `azd up` (azure.yaml) runs this, publishes the code and the web app,
// and its hooks (hooks/) do the rest; the Event Grid subscription needs the published code first.
targetScope = 'resourceGroup'

// --- environment ------------------------------------------------------------------------------
@description('dev | prod. Also FOLIO_ENVIRONMENT and the App Configuration label.')
@allowed([
  'dev'
  'prod'
])
param environmentName string

@description('Short name used in every resource name.')
@minLength(2)
@maxLength(8)
param baseName string = 'folio'

@description('Region for everything except the Static Web App.')
param location string = resourceGroup().location

@description('Static Web Apps is offered in a few regions only.')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param staticWebAppLocation string = 'westeurope'

param tags object = {}

@description('Private networking: VNet-injected PostgreSQL (public access disabled) and VNet-integrated functions. Required for prod.')
param enablePrivateNetworking bool = false

param vnetAddressPrefix string = '10.40.0.0/16'
param functionSubnetPrefix string = '10.40.1.0/24'
param postgresSubnetPrefix string = '10.40.2.0/24'

// --- PostgreSQL -------------------------------------------------------------------------------
@description('Object id of the Entra principal that administers PostgreSQL (runs migrations, creates the app role). A group of operators or the CI identity, never the app identity.')
param postgresAdminObjectId string

@description('Display name of that principal (group name, UPN or service principal name); also its PostgreSQL role name.')
param postgresAdminPrincipalName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresAdminPrincipalType string = 'Group'

@allowed([
  '16'
  '17'
  '18'
])
param postgresVersion string = '17'

param postgresSkuName string = 'Standard_D2ds_v5'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'GeneralPurpose'

param postgresStorageSizeGB int = 32

@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

param postgresGeoRedundantBackup bool = false
param postgresHighAvailability bool = false

@description('Built-in PgBouncer (port 6432). Needs General Purpose or Memory Optimized compute.')
param postgresPgBouncer bool = true

@description('Dev only (ignored with private networking): [{ name, startIpAddress, endIpAddress }].')
param postgresFirewallRules array = []

// --- function app -----------------------------------------------------------------------------
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param functionHttpPerInstanceConcurrency int = 16

@description('Always-ready instances, e.g. [{ name: \'http\', instanceCount: 1 }]; [] scales to zero.')
param functionAlwaysReady array = []

@description('Zone-redundant Flex Consumption plan (only in regions that offer it).')
param functionZoneRedundant bool = false

param logLevel string = 'INFO'

@description('Connections per process (Flex Consumption scales processes out; PgBouncer multiplexes them).')
param databasePoolMax int = 4

@description('`organizations`: Entra work and school accounts of any tenant (multi-tenant app registration); or one tenant id.')
param authEntraTenantId string = 'organizations'

@description('Comma-separated tenant ids whose users may sign in; empty: every tenant.')
param authAllowedTenants string = ''

@description('Application (client) id of the API app registration: the `aud` of bearer tokens. Empty: no bearer tokens (API keys only).')
param authAudience string = ''

param azureOpenAiEndpoint string

param azureOpenAiEmbeddingDeployment string = 'text-embedding-3-small'

@description('Name of an Azure OpenAI account in this resource group to grant the app "Cognitive Services OpenAI User" on; empty to grant it yourself.')
param azureOpenAiAccountName string = ''

@description('Chat answer provider the app uses (e.g. azure-openai).')
param chatProvider string = 'azure-openai'

@description('Chat model deployment on the Azure OpenAI account (CHAT_PROVIDER azure-openai).')
param azureOpenAiChatDeployment string = 'gpt-4o-mini'

@description('Deploy Azure AI Document Intelligence for OCR of scanned PDFs and images (billed per page analysed).')
param deployDocumentIntelligence bool = true

@allowed([
  'S0'
  'F0'
])
param documentIntelligenceSkuName string = 'S0'

@description('Scans with more pages are refused before anything is sent to Document Intelligence.')
@minValue(1)
@maxValue(2000)
param documentIntelligenceMaxPages int = 300

@description('Extra browser origins of the web app (its custom domains) for Blob and API CORS.')
param additionalCorsOrigins array = []

// --- monitoring -------------------------------------------------------------------------------
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// --- storage ----------------------------------------------------------------------------------
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@minValue(1)
@maxValue(365)
param blobSoftDeleteRetentionDays int = 7

// --- Event Grid -------------------------------------------------------------------------------
@description('Second pass only: create the blob-event subscription once on_blob_event is deployed.')
param deployEventSubscription bool = false

@minValue(1)
@maxValue(30)
param eventGridMaxDeliveryAttempts int = 10

@minValue(1)
@maxValue(1440)
param eventGridEventTimeToLiveInMinutes int = 1440

// --- App Configuration / deployer -------------------------------------------------------------
@description('Object id of whoever runs the deployment: gets App Configuration Data Owner so ARM can write FOLIO_SENTINEL, and Key Vault Secrets Officer on the app\'s vault so postprovision can create database-context-key. Empty: neither role is assigned (hold them already).')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

param createAppConfigSentinel bool = true

// --- names ------------------------------------------------------------------------------------
var isProd = environmentName == 'prod'
var suffix = take(uniqueString(resourceGroup().id, baseName, environmentName), 6)
var prefix = '${baseName}-${environmentName}'
var names = {
  identity: 'id-${prefix}'
  workspace: 'log-${prefix}-${suffix}'
  appInsights: 'appi-${prefix}-${suffix}'
  vnet: 'vnet-${prefix}'
  storage: toLower(take('st${replace(baseName, '-', '')}${environmentName}${suffix}', 24))
  serviceBus: 'sb-${prefix}-${suffix}'
  postgres: 'psql-${prefix}-${suffix}'
  postgresDnsZone: '${prefix}-${suffix}.private.postgres.database.azure.com'
  cosmos: 'cosmos-${prefix}-${suffix}'
  keyVault: take('kv-${prefix}-${suffix}', 24)
  userKeyVault: take('kvu-${prefix}-${suffix}', 24)
  appConfig: 'appcs-${prefix}-${suffix}'
  staticWebApp: 'swa-${prefix}-${suffix}'
  functionApp: 'func-${prefix}-${suffix}'
  functionPlan: 'plan-${prefix}-${suffix}'
  eventGridTopic: 'evgt-${prefix}-${suffix}'
  documentIntelligence: 'di-${prefix}-${suffix}'
}
var allTags = union({
  app: 'folio'
  environment: environmentName
}, tags)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionInDays
  }
}

module network 'modules/network.bicep' = if (enablePrivateNetworking) {
  name: 'network'
  params: {
    vnetName: names.vnet
    location: location
    tags: allTags
    postgresPrivateDnsZoneName: names.postgresDnsZone
    addressPrefix: vnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
    postgresSubnetPrefix: postgresSubnetPrefix
  }
}

// azd finds the resources it deploys code to by this tag (azure.yaml services `api` and `web`).
module staticWebApp 'modules/staticwebapp.bicep' = {
  name: 'staticwebapp'
  params: {
    name: names.staticWebApp
    location: staticWebAppLocation
    tags: union(allTags, {
      'azd-service-name': 'web'
    })
  }
}

// The web app's origins: the only browser origins the API (CORS) and Blob Storage (uploads) accept.
var corsOrigins = concat([
  'https://${staticWebApp.outputs.defaultHostname}'
], additionalCorsOrigins)

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: allTags
    skuName: storageSkuName
    softDeleteRetentionDays: blobSoftDeleteRetentionDays
    corsAllowedOrigins: corsOrigins
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: allTags
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: names.postgres
    location: location
    tags: allTags
    version: postgresVersion
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    highAvailability: postgresHighAvailability
    pgBouncerEnabled: postgresPgBouncer
    entraAdminObjectId: postgresAdminObjectId
    entraAdminPrincipalName: postgresAdminPrincipalName
    entraAdminPrincipalType: postgresAdminPrincipalType
    passwordAuthEnabled: false
    delegatedSubnetId: enablePrivateNetworking ? network.outputs.postgresSubnetId : ''
    privateDnsZoneId: enablePrivateNetworking ? network.outputs.postgresPrivateDnsZoneId : ''
    firewallRules: enablePrivateNetworking ? [] : postgresFirewallRules
    databaseName: 'folio'
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    name: names.cosmos
    location: location
    tags: allTags
    databaseName: 'folio'
    chatContainerName: 'chat'
    appPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    enablePurgeProtection: isProd
    softDeleteRetentionInDays: isProd ? 90 : 7
  }
}

// A second vault for users' own chat provider keys: the app may write there (Secrets Officer), while
// the vault above, with the app's own secrets, stays read-only to it.
module userKeyVault 'modules/keyvault.bicep' = {
  name: 'keyvault-userkeys'
  params: {
    name: names.userKeyVault
    location: location
    tags: allTags
    enablePurgeProtection: isProd
    softDeleteRetentionInDays: isProd ? 90 : 7
  }
}

module appConfig 'modules/appconfig.bicep' = {
  name: 'appconfig'
  params: {
    name: names.appConfig
    location: location
    tags: allTags
    skuName: isProd ? 'standard' : 'free'
    label: environmentName
    createSentinel: createAppConfigSentinel
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module documentIntelligence 'modules/docintel.bicep' = if (deployDocumentIntelligence) {
  name: 'docintel'
  params: {
    name: names.documentIntelligence
    location: location
    tags: allTags
    skuName: documentIntelligenceSkuName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: names.functionApp
    planName: names.functionPlan
    location: location
    tags: union(allTags, {
      'azd-service-name': 'api'
    })
    environmentName: environmentName
    identityId: identity.outputs.id
    identityName: identity.outputs.name
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    uploadContainerName: storage.outputs.uploadContainerName
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    httpPerInstanceConcurrency: functionHttpPerInstanceConcurrency
    alwaysReady: functionAlwaysReady
    zoneRedundant: functionZoneRedundant
    subnetId: enablePrivateNetworking ? network.outputs.functionSubnetId : ''
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    appConfigEndpoint: appConfig.outputs.endpoint
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    indexMaxDelivery: serviceBus.outputs.maxDeliveryCount
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    cosmosChatContainerName: cosmos.outputs.chatContainerName
    postgresFqdn: postgres.outputs.fqdn
    postgresPort: postgres.outputs.port
    postgresDatabaseName: postgres.outputs.databaseName
    postgresPooled: postgresPgBouncer
    logLevel: logLevel
    databasePoolMax: databasePoolMax
    authEntraTenantId: authEntraTenantId
    authAllowedTenants: authAllowedTenants
    authAudience: authAudience
    azureOpenAiEndpoint: azureOpenAiEndpoint
    azureOpenAiEmbeddingDeployment: azureOpenAiEmbeddingDeployment
    chatProvider: chatProvider
    azureOpenAiChatDeployment: azureOpenAiChatDeployment
    chatKeyVaultUri: userKeyVault.outputs.uri
    documentIntelligenceEndpoint: deployDocumentIntelligence ? documentIntelligence.outputs.endpoint : ''
    documentIntelligenceMaxPages: documentIntelligenceMaxPages
    corsAllowedOrigins: corsOrigins
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    name: names.eventGridTopic
    location: location
    tags: allTags
    storageAccountId: storage.outputs.id
    functionAppId: functionApp.outputs.id
    functionName: 'on_blob_event'
    uploadContainerName: storage.outputs.uploadContainerName
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    deployEventSubscription: deployEventSubscription
    maxDeliveryAttempts: eventGridMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventGridEventTimeToLiveInMinutes
  }
}

// Role assignments come last (they need the Event Grid topic's identity). The function app does not
// wait for them: Flex Consumption starts no host until code is published, by which time they exist.
module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    userKeyVaultName: userKeyVault.outputs.name
    appConfigName: appConfig.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    eventGridPrincipalId: eventGrid.outputs.topicPrincipalId
    azureOpenAiAccountName: azureOpenAiAccountName
    documentIntelligenceAccountName: deployDocumentIntelligence ? documentIntelligence.outputs.name : ''
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppHostname string = functionApp.outputs.defaultHostname
output staticWebAppName string = staticWebApp.outputs.name
output staticWebAppHostname string = staticWebApp.outputs.defaultHostname
output storageAccountName string = storage.outputs.name
output storageBlobEndpoint string = storage.outputs.blobEndpoint
output uploadContainer string = storage.outputs.uploadContainerName
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output chatKeyVaultUri string = userKeyVault.outputs.uri
output appConfigEndpoint string = appConfig.outputs.endpoint
output cosmosEndpoint string = cosmos.outputs.endpoint
output postgresServerName string = postgres.outputs.name
output postgresFqdn string = postgres.outputs.fqdn
output serviceBusFqdn string = serviceBus.outputs.fullyQualifiedNamespace
output identityName string = identity.outputs.name
output identityClientId string = identity.outputs.clientId
// For azd's hooks (bicep/hooks/): azd stores every output in the environment under its own name.
output FOLIO_ENVIRONMENT string = environmentName
output WEB_APP_URL string = 'https://${staticWebApp.outputs.defaultHostname}'
output API_BASE_URL string = 'https://${functionApp.outputs.defaultHostname}/api'
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_ID string = functionApp.outputs.id
output STORAGE_ACCOUNT_ID string = storage.outputs.id
output EVENT_GRID_TOPIC_NAME string = names.eventGridTopic
output POSTGRES_SERVER_NAME string = postgres.outputs.name
output KEY_VAULT_NAME string = keyVault.outputs.name
output POSTGRES_FQDN string = postgres.outputs.fqdn
output POSTGRES_PRIVATE bool = enablePrivateNetworking
output APP_IDENTITY_NAME string = identity.outputs.name
output FOLIO_LOCATION string = location
output FOLIO_TAGS string = string(allTags)
