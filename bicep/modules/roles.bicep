// Role assignments: exactly the data-plane access the app identity needs, each scoped to the one
// resource it is for. Built-in role definition ids are public and stable.
// Cosmos DB's data-plane role is a Cosmos SQL role assignment (cosmos.bicep), not Azure RBAC.
// The deployer's App Configuration Data Owner (to write the sentinel key) is in appconfig.bicep,
// next to the key it must precede; its Key Vault Secrets Officer on the app's vault is here.

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

param storageAccountName string
param deadLetterContainerName string = 'eventgrid-deadletter'
param serviceBusNamespaceName string
param keyVaultName string
@description('The vault of users\' own chat provider keys: the one vault the app may write to.')
param userKeyVaultName string
param appConfigName string
param appInsightsName string

@description('Principal id of the Event Grid system topic\'s system-assigned identity (dead-lettering).')
param eventGridPrincipalId string

@description('Object id of whoever runs the deployment: gets Key Vault Secrets Officer on the app\'s vault, where bicep/hooks/postprovision.sh creates the database-context-key secret. Empty: no assignment (grant it beforehand).')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

@description('Name of an Azure OpenAI account in this resource group the app calls; empty: assign "Cognitive Services OpenAI User" yourself where the account lives.')
param azureOpenAiAccountName string = ''

@description('Name of the Document Intelligence account (docintel.bicep) the app calls for OCR; empty: none deployed.')
param documentIntelligenceAccountName string = ''

var roles = {
  // Storage Blob Data Owner. The Functions host needs Owner on its AzureWebJobsStorage account when
  // it connects with an identity (it manages its own containers: leases, keys, Flex deployment
  // package); the same account holds the uploads, and Owner includes generateUserDelegationKey, so
  // Contributor + Storage Blob Delegator would not be enough for the host and one role covers both.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Azure Service Bus Data Owner: the Functions docs list it (Manage) for the Service Bus trigger,
  // whose scale decisions read the queue's length; it includes send and receive. The namespace
  // holds only the index queue.
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  appConfigDataReader: '516239f1-63e1-4d78-a4de-a74fb236a071'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  // Cognitive Services User: data-plane calls (analyze) with an Entra token; no key listing.
  cognitiveServicesUser: 'a97b65f3-24c7-4388-baec-2e87135dc908'
}
// Not assigned on purpose: Storage Queue Data Contributor and Storage Table Data Contributor. The
// host needs queues only for blob triggers (polling) and Durable Functions, tables only for
// Durable Functions; Folio uses HTTP, Event Grid and Service Bus triggers, so neither applies.

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource userKeyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: userKeyVaultName
}

resource appConfig 'Microsoft.AppConfiguration/configurationStores@2024-05-01' existing = {
  name: appConfigName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (!empty(azureOpenAiAccountName)) {
  name: azureOpenAiAccountName
}

resource documentIntelligence 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (!empty(documentIntelligenceAccountName)) {
  name: documentIntelligenceAccountName
}

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appServiceBusOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: serviceBus
  name: guid(serviceBus.id, appPrincipalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The deployer creates the DATABASE_CONTEXT_KEY secret (database-context-key) once, in postprovision,
// and reads it back to install it in the database; the app only reads it (Secrets User above).
resource deployerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  scope: vault
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// Users' own provider keys: set, read, delete (soft) and recover secrets in that vault only.
resource appUserKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: userKeyVault
  name: guid(userKeyVault.id, appPrincipalId, roles.keyVaultSecretsOfficer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appConfigReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appConfig
  name: guid(appConfig.id, appPrincipalId, roles.appConfigDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.appConfigDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appOpenAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(azureOpenAiAccountName)) {
  scope: openAi
  name: guid(resourceGroup().id, azureOpenAiAccountName, appPrincipalId, roles.cognitiveServicesOpenAiUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAiUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appDocumentIntelligenceUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(documentIntelligenceAccountName)) {
  scope: documentIntelligence
  name: guid(resourceGroup().id, documentIntelligenceAccountName, appPrincipalId, roles.cognitiveServicesUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid's system topic identity may write dead letters into that one container, nothing else.
resource eventGridDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: deadLetterContainer
  name: guid(deadLetterContainer.id, eventGridPrincipalId, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}
