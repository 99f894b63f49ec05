// A custom role with exactly what the C2PA `keyvault` signer does
// (imagegen/checks/keyvault_signer.py): read the certificate and its public key, read the
// certificate's secret for the chain, sign a digest, and (unless C2PA_CREATE_CERTIFICATE is
// off) create the certificate, self-signed, when it does not exist yet
// (imagegen/checks/keyvault_certificate.py). No built-in role is that narrow: Key Vault
// Crypto User also updates, backs up, encrypts, decrypts, wraps and unwraps with every key
// in the vault; Key Vault Certificates Officer also deletes, purges, imports and sets issuers.
targetScope = 'subscription'

@description('Resource group the role may be assigned in (the C2PA vault\'s).')
param resourceGroupName string

@description('true: the role may also create certificates (the app\'s self-signed first certificate).')
param allowCreateCertificate bool = true

var assignableScope = '${subscription().id}/resourceGroups/${resourceGroupName}'

var signDataActions = [
  // The certificate: its key id and the leaf (get_certificate), and a create's pending
  // operation (get_certificate_operation).
  'Microsoft.KeyVault/vaults/certificates/read'
  // The certificate's secret holds the chain the CA issued; the key is created
  // non-exportable (infra/c2pa-certificate-policy.json, or the self-signed policy in the
  // app), so no private key is in it.
  'Microsoft.KeyVault/vaults/secrets/getSecret/action'
  // The public key (CryptographyClient reads it before its first operation).
  'Microsoft.KeyVault/vaults/keys/read'
  // ES256 over the claim's digest: the private key never leaves Key Vault.
  'Microsoft.KeyVault/vaults/keys/sign/action'
]
// "Creates a new certificate. If the certificate does not exist, the first version is
// created. Otherwise, a new version is created." (Azure permissions for Security,
// Microsoft.KeyVault data actions.) The app calls it only when the certificate does not exist.
var createDataActions = allowCreateCertificate ? [
  'Microsoft.KeyVault/vaults/certificates/create/action'
] : []

resource signer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // One definition per resource group: role names are unique in the tenant.
  name: guid(assignableScope, 'c2pa-signer')
  properties: {
    roleName: 'C2PA signer (${resourceGroupName})'
    description: 'Sign C2PA claims with a Key Vault key, read its certificate chain, and create a first self-signed certificate (Durable Diffusion).'
    type: 'CustomRole'
    assignableScopes: [
      assignableScope
    ]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: concat(signDataActions, createDataActions)
        notDataActions: []
      }
    ]
  }
}

output id string = signer.id
