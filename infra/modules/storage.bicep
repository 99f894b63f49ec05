// The app's storage: the Functions runtime's own state (Durable task hub queues and
// tables, host locks, keys) and the pipeline's blob containers. Shared-key access is off:
// the app's identity is the only way in, so no connection string with a key exists.
param name string
param location string
param tags object

@description('Principal id of the app identity.')
param principalId string

@description('Object id of the person running azd (empty: none): may read and write blobs with the imagegen CLI.')
param userPrincipalId string = ''

// azd passes the kind of principal it runs as (AZURE_PRINCIPAL_TYPE): a person at a
// terminal is a User, a CI pipeline is a ServicePrincipal. A role assignment whose type
// does not match the principal fails with UnmatchedPrincipalType.
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal userPrincipalId is.')
param userPrincipalType string = 'User'

// The pipeline's containers; imagegen.core.blob_names.CONTAINERS names the same ten
// (tests/infra/test_config_consistency.py checks that they match).
var containerNames = [
  'prompts'
  'prompts-rejected'
  'schedules'
  'inputs'
  'outputs'
  'quarantine'
  'manifests'
  'published'
  'adapters'
  'renders'
]

// The queues between the control app and the GPU pool: orders, answers, and the orders the
// pool failed on five times (imagegen.core.blob_names.render_queues, for the default
// IMAGEGEN_RENDER_QUEUE). Made here so the pool's queue trigger, and the scale rule
// Container Apps derives from it, find the queue before the first order.
var queueNames = [
  'render-orders'
  'render-orders-outcomes'
  'render-orders-poison'
]

// Built-in roles the Functions runtime needs for identity-based AzureWebJobsStorage with
// Durable Functions (blobs for leases and payloads, queues for work items, tables for history).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:The serverless GPU app reaches storage over the public endpoint (no VNet in this template), so the network rule cannot default to deny; every request needs an Entra token because shared keys are disabled.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no VNet, so the public endpoint stays on (Entra-only access).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant: the task hub and the results survive a regional outage.
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

// A render order and its answer matter while the batch runs, and for a while after to read
// what went wrong; the manifest keeps what the job made. So they expire after 30 days.
resource renderOrdersExpire 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'render-orders-expire'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'renders/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: 30
                }
              }
            }
          }
        }
      ]
    }
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The deployer may drop job files and read results with the imagegen CLI or Storage Explorer.
resource userBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, storageBlobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
