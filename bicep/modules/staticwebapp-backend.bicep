// Links the function app to the Static Web App as its /api backend. Linking also puts the
// function app behind the SWA's authentication, so the API is reachable through the SWA only,
// which is what AUTH_TRUST_SWA_PRINCIPAL=true relies on.

param staticWebAppName string
param functionAppId string
param functionAppLocation string

resource site 'Microsoft.Web/staticSites@2024-04-01' existing = {
  name: staticWebAppName
}

resource backend 'Microsoft.Web/staticSites/linkedBackends@2024-04-01' = {
  parent: site
  name: 'api'
  properties: {
    backendResourceId: functionAppId
    region: functionAppLocation
  }
}

output id string = backend.id
