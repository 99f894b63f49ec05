// Key Vault for C2PA signing: it holds one EC P-256 key with its certificate, and the app
// signs through Key Vault's `sign` operation, so the private key never leaves the vault.
// Bicep cannot create certificates (they are data-plane objects); the app has Key Vault
// create a self-signed one at its first start, and docs/provenance.md says how to bring a
// CA-issued one. The vault uses Azure RBAC (no access policies), soft delete and purge
// protection: a deleted signing key can be recovered for 90 days and cannot be purged
// early by anyone.
param name string
param location string
param tags object

@description('Principal id of the app identity: signs, reads the certificate chain and creates the first certificate, nothing else.')
param principalId string

@description('Id of the custom role that allows exactly that (c2pa-signer-role.bicep).')
param signerRoleDefinitionId string

@description('Object id of the person running azd (empty: none): manages certificates (creates the key and CSR, merges or imports the certificate).')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal userPrincipalId is.')
param userPrincipalType string = 'User'

// Built-in role: Key Vault Certificates Officer (every certificate operation, no key use,
// no secret reads, no permission management).
var keyVaultCertificatesOfficer = 'a4417e6f-fecd-4de8-b567-7b0420556985'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:The serverless GPU app reaches Key Vault over the public endpoint (no VNet in this template), so the firewall cannot default to deny; every call needs an Entra token and an RBAC data role.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: no VNet or private endpoint here, so public network access stays on (Entra-only, RBAC data roles).
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    // Standard: software-protected keys (EC). Premium adds HSM-protected keys (EC-HSM).
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Nothing outside the data-plane roles: no VM, disk-encryption or ARM template reads.
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource signer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, signerRoleDefinitionId)
  scope: vault
  properties: {
    roleDefinitionId: signerRoleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource userCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificatesOfficer)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
