// The Durable Task Scheduler: the managed backend for the app's orchestrations (history,
// work items, timers) with its own dashboard. The app reaches it with its managed identity
// only; the scheduler has no keys. host.json names the provider (`azureManaged`) and the
// task hub; app.bicep sets the identity-based connection string. Scaling on its work items
// is the platform's (Container Apps derives KEDA rules from a functionapp's triggers).
param name string
param location string
param tags object

@description('Task hub name; host.json\'s hubName.')
param taskHubName string

@allowed([
  'Consumption'
  'Dedicated'
])
@description('Consumption: billed per operation, for bursty work like ours. Dedicated: reserved capacity units for steady high throughput.')
param skuName string = 'Consumption'

@description('Principal id of the app identity: runs and manages orchestrations.')
param principalId string

@description('Object id of the person running azd (empty: none): reads the task hub in the dashboard.')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal userPrincipalId is.')
param userPrincipalType string = 'User'

// Built-in roles: Durable Task Data Contributor (every data operation: the worker's, and the
// client's start, query, raise event, terminate, purge) and Durable Task Data Reader.
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'
var durableTaskDataReader = 'd6a5505f-6ebb-45a4-896e-ac8274cfc0ac'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // The serverless GPU app has no fixed outbound address and no VNet in this template, so
    // the allow list is open; every call still needs an Entra token and the data role. An
    // empty list would deny everything.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

// Scoped to the task hub, not the scheduler: the identity reaches no other hub.
resource appContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, principalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource userReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(taskHub.id, userPrincipalId, durableTaskDataReader)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataReader)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output dashboardUrl string = taskHub.properties.dashboardUrl
