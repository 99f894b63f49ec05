// The image registry azd pushes to. No admin user: the container app pulls with the
// app identity (AcrPull), azd pushes with the deployer's own Entra login.
param name string
param location string
param tags object
param principalId string

// Built-in role: AcrPull.
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  //checkov:skip=CKV_AZURE_139:azd pushes from the deployer's machine and the serverless GPU environment pulls without a VNet; private access needs Premium and a VNet this template does not deploy. Pushes and pulls both need Entra tokens (admin user off, anonymous pull off).
  //checkov:skip=CKV_AZURE_166:Quarantine holds every pushed image until a scanner releases it; with no scanner in this template, `azd deploy` would never start its own image.
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
