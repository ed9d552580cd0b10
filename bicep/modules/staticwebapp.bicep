// Static Web App: serves the static web app (frontend/dist) and nothing else. No linked backend:
// Static Web Apps cannot link a Flex Consumption app, cuts proxied requests at 45 s, buffers
// streamed answers and overwrites Authorization; the web app calls the function app directly with
// Entra tokens (CORS on the function app). Standard for custom domains and the SLA.

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
