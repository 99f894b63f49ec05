// Azure AI Content Safety: prompts and images are checked here. Keys are disabled; the
// app's identity calls it with the Cognitive Services User role.
param name string
param location string
param tags object
param principalId string

@allowed([
  'F0'
  'S0'
])
@description('F0 is free but rate-limited (and one per subscription); S0 for real traffic.')
param sku string = 'S0'

// Built-in role: Cognitive Services User.
var cognitiveServicesUser = 'a97b65f3-24c7-4388-baec-2e87135dc908'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  //checkov:skip=CKV_AZURE_134:The GPU app calls Content Safety over its public endpoint (no VNet in this template); every call needs an Entra token because local auth is disabled.
  name: name
  location: location
  tags: tags
  kind: 'ContentSafety'
  sku: {
    name: sku
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // A custom subdomain is required for Entra ID (token) authentication.
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource user 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, cognitiveServicesUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
