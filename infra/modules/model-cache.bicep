// The optional model cache: an Azure Files share mounted as HF_HOME, so replicas download
// a model's weights once instead of each on its first batch. Deployed only with
// modelCacheShare=true; by default the weights are baked into the image instead.
//
// Why a separate storage account: Container Apps mounts SMB Azure Files with the account
// key only, and the app's storage account has shared keys disabled. So the share lives in
// an account that holds nothing but public model weights. Its key goes from listKeys()
// straight into the environment's storage definition: never an output, a parameter or an
// app setting.
param name string
param location string
param tags object

@description('The Container Apps environment that mounts the share.')
param environmentName string

@description('Size of the share in GiB: SD 1.5 and SD-Turbo need about 5 each in full precision, SDXL about 14.')
param shareQuotaGiB int = 100

var shareName = 'models'
var storageName = 'model-cache'

resource environment 'Microsoft.App/managedEnvironments@2025-02-02-preview' existing = {
  name: environmentName
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:The serverless GPU environment mounts the share over the public endpoint (no VNet in this template), so the network rule cannot default to deny.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no VNet, so the public endpoint stays on.
  //checkov:skip=CKV_AZURE_206:Cached public model weights can be downloaded again; geo-replication would only add cost.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource files 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource share 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: files
  name: shareName
  properties: {
    shareQuota: shareQuotaGiB
    enabledProtocols: 'SMB'
  }
}

resource storage 'Microsoft.App/managedEnvironments/storages@2025-02-02-preview' = {
  parent: environment
  name: storageName
  properties: {
    azureFile: {
      accountName: account.name
      accountKey: account.listKeys().keys[0].value
      shareName: share.name
      accessMode: 'ReadWrite'
    }
  }
}

output storageName string = storage.name
