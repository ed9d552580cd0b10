// Key Vault with Azure RBAC authorization (no access policies). Holds the Stripe secrets, which
// operators set after deployment (no secret values live in Bicep or parameter files); the function
// app reads them through Key Vault references resolved with the user-assigned identity, and the
// app's settings layer can also read any secret by name (shared/config.py key_vault_secret_name).

param name string
param location string
param tags object = {}

@description('Purge protection (cannot be turned off again). main.bicep turns it off in dev only, so a dev vault name can be reused after deletion.')
param enablePurgeProtection bool = true

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109:No firewall: the Flex Consumption app (and App Service's Key Vault reference resolver) reach the vault over its public endpoint in this design, without private endpoints. Access is Entra RBAC only (Key Vault Secrets User for the app identity).
  //checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: public network access is required without private endpoints; RBAC authorization is enforced.
  properties: {
    //checkov:skip=CKV_AZURE_110:Purge protection is on in prod (main.bicep passes isProd) and deliberately off in dev; the service accepts only true or "not set", so the value is a conditional checkov cannot evaluate.
    //checkov:skip=CKV_AZURE_42:Soft delete is always on and purge protection is on in prod (see CKV_AZURE_110); checkov cannot evaluate the conditional.

    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // The service accepts only true or "not set" here.
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
