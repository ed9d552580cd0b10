// Azure AI Document Intelligence (kind FormRecognizer): OCR with layout (prebuilt-layout) for scanned
// PDFs and PNG/JPEG/TIFF uploads (shared/docintel.py). Entra only: local (key) auth is disabled and
// the app identity gets "Cognitive Services User" on this account (roles.bicep), which Entra tokens
// need a custom subdomain for. S0 bills per page analysed; nothing while idle.

@description('Name of the account; also its custom subdomain (https://<name>.cognitiveservices.azure.com/).')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region (Document Intelligence is not offered in every region).')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@allowed([
  'S0'
  'F0'
])
@description('S0: pay per page. F0: 500 free pages a month, only the first two pages of each document.')
param skuName string = 'S0'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  //checkov:skip=CKV_AZURE_134:Public network access is needed: the Flex Consumption app reaches the account over its public endpoint in this design (no private endpoints, as for Key Vault and Cosmos DB); local auth is disabled, so every call needs the app identity's Entra token.
  name: name
  location: location
  tags: tags
  kind: 'FormRecognizer'
  sku: {
    name: skuName
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: toLower(name)
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    restrictOutboundNetworkAccess: true
    allowedFqdnList: []
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
