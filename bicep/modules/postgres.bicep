// Azure Database for PostgreSQL Flexible Server: pgvector + pg_trgm allowed, Entra authentication,
// built-in PgBouncer (port 6432, transaction pooling), backups, optional zone-redundant HA.
// prod: VNet-injected (delegated subnet + private DNS zone), public access disabled.
// dev: public access with explicit firewall rules only.
//
// The app's managed identity is NOT made an Entra administrator: the app must connect as a
// non-owner role so that row-level security applies (docs/security.md). The Entra
// administrator is a separate principal (an operators group or the CI identity) that runs
// migrations and, once after the first deployment, creates the app identity's role:
//   SELECT * FROM pgaadauth_create_principal('<identity name>', false, false);
// (see bicep/README.md "Post-deployment").

param name string
param location string
param tags object = {}

@description('PostgreSQL major version. 17 is the newest GA version with pgvector 0.8 and built-in PgBouncer on Azure; the 2025-08-01 API also knows 18.')
@allowed([
  '16'
  '17'
  '18'
])
param version string = '17'

@description('Compute size. Built-in PgBouncer needs General Purpose or Memory Optimized (not Burstable).')
param skuName string = 'Standard_D2ds_v5'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'GeneralPurpose'

param storageSizeGB int = 32

@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

param geoRedundantBackup bool = false

@description('Zone-redundant high availability (standby in another zone). Not available on Burstable.')
param highAvailability bool = false

@description('Enable the built-in PgBouncer on port 6432.')
param pgBouncerEnabled bool = true

@description('Entra administrator: object id of a user, group or service principal.')
param entraAdminObjectId string

@description('Entra administrator display name (user principal name, group name or service principal name); it is also the PostgreSQL role name.')
param entraAdminPrincipalName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param entraAdminPrincipalType string = 'Group'

@description('Keep password authentication enabled (never in prod). Needs administratorLogin/administratorLoginPassword.')
param passwordAuthEnabled bool = false

param administratorLogin string = 'folio_admin'

@secure()
@description('Password of administratorLogin; only used when passwordAuthEnabled.')
param administratorLoginPassword string = ''

@description('Delegated subnet for VNet injection; empty for public access (dev).')
param delegatedSubnetId string = ''

@description('Private DNS zone for VNet injection; required with delegatedSubnetId.')
param privateDnsZoneId string = ''

@description('Firewall rules for public access (dev only): [{ name, startIpAddress, endIpAddress }]. 0.0.0.0-0.0.0.0 means "Azure services".')
param firewallRules array = []

param databaseName string = 'folio'

var vnetInjected = !empty(delegatedSubnetId)
var privateNetwork = {
  delegatedSubnetResourceId: delegatedSubnetId
  privateDnsZoneArmResourceId: privateDnsZoneId
  publicNetworkAccess: 'Disabled'
}
var publicNetwork = {
  publicNetworkAccess: 'Enabled'
}

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2025-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: passwordAuthEnabled ? administratorLogin : null
    administratorLoginPassword: passwordAuthEnabled ? administratorLoginPassword : null
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: passwordAuthEnabled ? 'Enabled' : 'Disabled'
      tenantId: tenant().tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled'
    }
    highAvailability: {
      mode: highAvailability ? 'ZoneRedundant' : 'Disabled'
    }
    network: vnetInjected ? privateNetwork : publicNetwork
  }
}

// Server-level changes are applied one at a time: each child waits for the previous one
// (the service rejects concurrent updates with ServerIsBusy).
resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2025-08-01' = {
  parent: server
  name: entraAdminObjectId
  properties: {
    principalName: entraAdminPrincipalName
    principalType: entraAdminPrincipalType
    tenantId: tenant().tenantId
  }
}

resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2025-08-01' = {
  parent: server
  name: 'azure.extensions'
  properties: {
    value: 'VECTOR,PG_TRGM'
    source: 'user-override'
  }
  dependsOn: [
    entraAdmin
  ]
}

resource pgBouncer 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2025-08-01' = {
  parent: server
  name: 'pgbouncer.enabled'
  properties: {
    value: pgBouncerEnabled ? 'true' : 'false'
    source: 'user-override'
  }
  dependsOn: [
    extensions
  ]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2025-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  dependsOn: [
    pgBouncer
  ]
}

@batchSize(1)
resource firewall 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2025-08-01' = [for rule in firewallRules: if (!vnetInjected) {
  parent: server
  name: rule.name
  properties: {
    startIpAddress: rule.startIpAddress
    endIpAddress: rule.endIpAddress
  }
  dependsOn: [
    database
  ]
}]

output id string = server.id
output name string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
output port int = pgBouncerEnabled ? 6432 : 5432
