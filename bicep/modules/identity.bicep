// The one user-assigned managed identity the function app uses for every Azure service
// (Storage, Service Bus, Cosmos DB, Key Vault, App Configuration, PostgreSQL, App Insights).
// User-assigned rather than system-assigned so that role assignments and the PostgreSQL role
// can be created before the function app exists and survive re-creating it.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
