// The app's one identity: it pulls the image, reads and writes storage, calls Content
// Safety and publishes telemetry. User-assigned, so the roles exist before the app does.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
