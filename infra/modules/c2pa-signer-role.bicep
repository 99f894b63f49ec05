// A custom role with exactly what the C2PA `keyvault` signer does (imagegen/keyvault_signer.py):
// read the certificate and its public key, read the certificate's secret for the chain,
// and sign a digest. No built-in role is that narrow: Key Vault Crypto User also updates,
// backs up, encrypts, decrypts, wraps and unwraps with every key in the vault.
targetScope = 'subscription'

@description('Resource group the role may be assigned in (the C2PA vault\'s).')
param resourceGroupName string

var assignableScope = '${subscription().id}/resourceGroups/${resourceGroupName}'

resource signer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // One definition per resource group: role names are unique in the tenant.
  name: guid(assignableScope, 'c2pa-signer')
  properties: {
    roleName: 'C2PA signer (${resourceGroupName})'
    description: 'Sign C2PA claims with a Key Vault key and read its certificate chain (Durable Diffusion).'
    type: 'CustomRole'
    assignableScopes: [
      assignableScope
    ]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          // The certificate: its key id and the leaf (get_certificate).
          'Microsoft.KeyVault/vaults/certificates/read'
          // The certificate's secret holds the chain the CA issued; the key is created
          // non-exportable (infra/c2pa-certificate-policy.json), so no private key is in it.
          'Microsoft.KeyVault/vaults/secrets/getSecret/action'
          // The public key (CryptographyClient reads it before its first operation).
          'Microsoft.KeyVault/vaults/keys/read'
          // ES256 over the claim's digest: the private key never leaves Key Vault.
          'Microsoft.KeyVault/vaults/keys/sign/action'
        ]
        notDataActions: []
      }
    ]
  }
}

output id string = signer.id
