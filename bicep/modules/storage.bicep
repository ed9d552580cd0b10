// One StorageV2 account for the app: uploaded documents, the Flex Consumption deployment package,
// the Functions host's own blobs (AzureWebJobsStorage, identity-based) and Event Grid dead letters.
// No shared keys anywhere: every client (host, app, Event Grid, deployments) uses Entra ID.

param name string
param location string
param tags object = {}

@description('Browser origins allowed to PUT uploads directly with a user-delegation SAS (the static web app).')
param corsAllowedOrigins array

@description('Replication: ZRS in prod survives a zone outage; LRS is enough for dev.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Days deleted blobs and containers stay recoverable.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Days after which dead-lettered Event Grid events are deleted.')
param deadLetterRetentionDays int = 30

param uploadContainerName string = 'uploads'
param deploymentContainerName string = 'deployments'
param deadLetterContainerName string = 'eventgrid-deadletter'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  //checkov:skip=CKV_AZURE_35:Browsers upload straight to Blob Storage with a short-lived user-delegation SAS (the file never passes through a function), so the blob endpoint must accept public traffic; shared keys are disabled and every other access is Entra RBAC.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: direct browser uploads need the public endpoint; anonymous blob access and shared keys are both disabled.
  //checkov:skip=CKV_AZURE_206:Replication is a per-environment parameter (skuName): ZRS/GZRS in prod, LRS in dev to keep it cheap.
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    cors: {
      corsRules: [
        {
          allowedOrigins: corsAllowedOrigins
          // PUT: browser uploads with the create-only SAS; GET/HEAD: the viewer reading an original
          // with the read SAS of GET /api/documents/{id}/content.
          allowedMethods: [
            'GET'
            'HEAD'
            'PUT'
            'OPTIONS'
          ]
          // What the upload ticket sends (shared/documents.py) and the local rule allows
          // (shared/storage.py allow_browser_uploads); no x-ms-meta-*: nothing the app would trust.
          allowedHeaders: [
            'x-ms-blob-type'
            'x-ms-blob-content-type'
            'content-type'
          ]
          exposedHeaders: [
            'etag'
            'x-ms-request-id'
          ]
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

resource uploads 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: uploadContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-eventgrid-dead-letters'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deadLetterRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    deadLetters
  ]
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output uploadContainerName string = uploads.name
output deploymentContainerName string = deployments.name
output deadLetterContainerName string = deadLetters.name
