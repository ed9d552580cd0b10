// App Configuration: Entra-only, one label per environment (FOLIO_ENVIRONMENT), and the sentinel
// key the app watches to know when to reload (shared/config.py SettingsProvider).
// With local auth disabled, ARM can only write key-values in pass-through mode: the deploying
// principal needs "App Configuration Data Owner" on the store; it is granted here, before the key
// is written, when deployerPrincipalId is given (else grant it beforehand or set createSentinel=false
// and create the key with `az appconfig kv set`).

param name string
param location string
param tags object = {}

@allowed([
  'free'
  'standard'
])
param skuName string = 'free'

@description('Label of the key-values (the app uses FOLIO_ENVIRONMENT as its label).')
param label string

param sentinelKey string = 'FOLIO_SENTINEL'

@description('Create the sentinel key-value (needs the deployer to hold App Configuration Data Owner).')
param createSentinel bool = true

@description('Object id of the principal running the deployment (gets App Configuration Data Owner on this store). Empty: no assignment.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

var isStandard = skuName == 'standard'
var appConfigDataOwnerRoleId = '5ae67dd6-50cb-40e7-96ff-dc2bfa4b606b'

resource store 'Microsoft.AppConfiguration/configurationStores@2024-05-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    enablePurgeProtection: isStandard
    softDeleteRetentionInDays: isStandard ? 7 : 0
    dataPlaneProxy: {
      authenticationMode: 'Pass-through'
      privateLinkDelegation: 'Disabled'
    }
  }
}

resource deployerDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  scope: store
  name: guid(store.id, deployerPrincipalId, appConfigDataOwnerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', appConfigDataOwnerRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// Key-value resource names are "<key>$<label>".
resource sentinel 'Microsoft.AppConfiguration/configurationStores/keyValues@2024-05-01' = if (createSentinel) {
  parent: store
  name: '${sentinelKey}$${label}'
  properties: {
    value: '1'
    contentType: 'text/plain'
  }
  dependsOn: [
    deployerDataOwner
  ]
}

output id string = store.id
output name string = store.name
output endpoint string = store.properties.endpoint
