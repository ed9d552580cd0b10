// Static Web App (Standard: needed for a linked "bring your own" function app backend).
// The link itself is in staticwebapp-backend.bicep: the function app needs this app's hostname for
// CORS before it exists, and the link needs the function app, so they are two steps.

param name string

@description('Static Web Apps is offered in a few regions only.')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param location string

param tags object = {}

resource site 'Microsoft.Web/staticSites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // No repositoryUrl: content is deployed with the SWA CLI and the deployment token.
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
    enterpriseGradeCdnStatus: 'Disabled'
  }
}

output id string = site.id
output name string = site.name
output defaultHostname string = site.properties.defaultHostname
