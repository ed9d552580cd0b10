// Cosmos DB for NoSQL, serverless, Entra-only (no account keys): chat history.
// The chat container is partitioned hierarchically by tenant, then user, so one tenant's
// traffic spreads over many physical partitions and a user's conversations stay together.

param name string
param location string
param tags object = {}

param databaseName string = 'folio'
param chatContainerName string = 'chat'

@description('Principal id of the app identity; gets the built-in Data Contributor role on the folio database only.')
param appPrincipalId string

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  //checkov:skip=CKV_AZURE_99:No IP filter: Flex Consumption outbound addresses are not fixed and there is no private endpoint in this design; local (key) auth is disabled, so every data-plane call needs an Entra token with the SQL role below.
  //checkov:skip=CKV_AZURE_101:Same as CKV_AZURE_99: public network access stays enabled because the function app reaches Cosmos over its public endpoint; access is Entra-only.
  properties: {
    databaseAccountOfferType: 'Standard'
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource chat 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: chatContainerName
  properties: {
    resource: {
      id: chatContainerName
      partitionKey: {
        paths: [
          '/tenantId'
          '/userId'
        ]
        kind: 'MultiHash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/*'
          }
        ]
        excludedPaths: [
          {
            path: '/"_etag"/?'
          }
        ]
      }
      // -1: TTL is on but items never expire unless they carry their own `ttl`.
      defaultTtl: -1
    }
  }
}

// Built-in "Cosmos DB Built-in Data Contributor" (data plane), scoped to the folio database.
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource appDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: appPrincipalId
    scope: '${account.id}/dbs/${databaseName}'
  }
  dependsOn: [
    database
  ]
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output chatContainerName string = chat.name
