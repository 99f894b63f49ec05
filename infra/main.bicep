// Durable Diffusion on Azure: one `azd up` provisions everything the app needs.
//
// Subscription scope, as azd templates are: the resource group is part of the deployment.
// Every module lives in ./modules; each owns one resource (or one resource and its roles).
// The app reaches every service with one user-assigned managed identity: no keys, no
// connection strings with secrets, and nothing secret in any output.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for all resources. Serverless GPUs exist in a few regions only: see docs/deploy.md.')
param location string

@description('Object id of the person running azd, given data access to the storage account for the imagegen CLI (empty: none).')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal principalId is: azd sets AZURE_PRINCIPAL_TYPE to User, or to ServicePrincipal when it runs as one (CI).')
param principalType string = 'User'

@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
@description('Serverless GPU for the app: T4 (16 GB, default) or A100 (80 GB, for SDXL and big batches).')
param gpuProfileType string = 'Consumption-GPU-NC8as-T4'

@description('Model the app generates with: a Hugging Face hub id. Must match the weights baked into the image (azure.yaml build args).')
param imagegenModel string = 'stabilityai/sd-turbo'

@description('Hub revision (commit) of the model; empty for the default branch.')
param imagegenModelRevision string = ''

@description('Tiny VAE (TAESD) for jobs with `speedups.tiny_vae`: a hub id that fits the model family (madebyollin/taesd for SD 1.x/2.x, madebyollin/taesdxl for SDXL). Baked into the image like the model (azure.yaml build args); empty: such jobs are refused.')
param imagegenTinyVae string = 'madebyollin/taesd'

@description('A model catalog file inside the image or on the model cache share (docs/models.md): the models a job may name. Empty: the deployment serves IMAGEGEN_MODEL alone.')
param imagegenModels string = ''

@description('Most models one replica keeps loaded at once; past it the least recently used is unloaded.')
param imagegenMaxLoadedModels string = '1'

@description('true: mount an Azure Files share as the model cache (HF_HOME) and download weights on first use. false (default): weights are baked into the image.')
param modelCacheShare bool = false

@allowed([
  'scheduler'
  'storage'
])
@description('Durable Functions backend: scheduler (Durable Task Scheduler, managed, with a dashboard; default) or storage (the task hub in the storage account\'s queues and tables).')
param durableBackend string = 'scheduler'

@allowed([
  'Consumption'
  'Dedicated'
])
@description('Durable Task Scheduler SKU (with durableBackend scheduler).')
param durableSchedulerSku string = 'Consumption'

@minValue(1)
@maxValue(10)
@description('Most GPU replicas of the render pool (it has none while idle); each is billed per second while it runs. Your serverless GPU quota caps this too.')
param maxReplicas int = 1

@description('Image the app runs; azd sets this after its first deploy (SERVICE_APP_IMAGE_NAME). Empty: a public placeholder until then.')
param appImageName string = ''

@description('Image the GPU pool runs, the same build as the app\'s; azd sets this after its first deploy (SERVICE_RENDER_IMAGE_NAME).')
param renderImageName string = ''

@description('Comma-separated Content Safety blocklist names the app checks prompts against (create them in the Content Safety resource).')
param contentSafetyBlocklists string = ''

@description('Per-category block severity, e.g. `Sexual=2,Violence=4` (default 4 for every category).')
param safetyThresholds string = ''

@allowed([
  'off'
  'on'
])
@description('on: every job waits for a reviewer before its images are published (a job may still say otherwise). Default off.')
param imagegenReview string = 'off'

// A Teams or Slack webhook URL carries its token in the path: a credential, so it is
// secure here and a Container Apps secret in the app.
@secure()
@description('Webhook (https) called when a job awaits review and when it ends, for jobs that name none; empty: none.')
param imagegenNotifyUrl string = ''

@description('Comma-separated hosts a job may name in its own notify URL; empty: jobs may not name one.')
param imagegenNotifyHosts string = ''

// The key Foundry and OpenAI clients send to POST /api/images/generations. azd generates it
// on the first provision and keeps it in the environment (or takes IMAGEGEN_API_KEY when
// set); it reaches the app only as a Container Apps secret, never an output.
@secure()
@minLength(32)
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 48
      noSpecial: true
    }
  }
})
@description('Key for the Foundry-compatible route (POST /api/images/generations).')
param imagegenApiKey string

// The azd hook infra/hooks/sign-in-preprovision.sh creates the registration and sets
// AUTH_CLIENT_ID / AUTH_CLIENT_SECRET before this template runs; off leaves the app to those who
// front it themselves, even when an earlier `azd up` left a client id in the environment.
@allowed([
  'entra'
  'off'
])
@description('Sign-in for the gallery and review: entra (default) turns on Container Apps built-in authentication with Entra ID when authClientId is given; off configures none (function keys only).')
param signIn string = 'entra'

@description('Application (client) id of the Entra ID app registration people sign in with (docs/deploy.md, "Signing in"); empty: no built-in authentication, function keys only.')
param authClientId string = ''

@secure()
@description('Client secret of that registration (azd variable AUTH_CLIENT_SECRET); held as a Container Apps secret. Empty: sign-in with ID tokens only.')
param authClientSecret string = ''

@allowed([
  'keyvault'
  'off'
])
@description('C2PA Content Credentials: keyvault signs every image with the Key Vault certificate C2PA_CERT_NAME (created self-signed at the app\'s first start unless C2PA_CREATE_CERTIFICATE is off: see docs/provenance.md); off signs nothing.')
param c2paSigner string = 'keyvault'

@description('Name of the C2PA signing certificate (and its key) in the Key Vault.')
param c2paCertName string = 'c2pa-signer'

@allowed([
  'self-signed'
  'off'
])
@description('When the C2PA certificate does not exist: self-signed has the app create one in Key Vault at its first start (EC P-256, non-exportable; valid signatures, untrusted chain), so the first deployment signs; off holds images back until you bring one (docs/provenance.md).')
param c2paCreateCertificate string = 'self-signed'

@description('RFC 3161 timestamp authority for C2PA signatures; empty: no timestamp.')
param c2paTsaUrl string = ''

// The Durable Functions task hub; host.json names the same hub.
var taskHubName = 'DurableDiffusion'

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentity}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalytics}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module contentSafety 'modules/content-safety.bicep' = {
  name: 'content-safety'
  scope: rg
  params: {
    name: '${abbrs.contentSafety}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

// The custom role the app signs C2PA claims with, assignable only in this resource group.
module c2paSignerRole 'modules/c2pa-signer-role.bicep' = {
  name: 'c2pa-signer-role'
  params: {
    resourceGroupName: rg.name
    allowCreateCertificate: c2paCreateCertificate == 'self-signed'
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: '${abbrs.keyVault}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    signerRoleDefinitionId: c2paSignerRole.outputs.id
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module durableTaskScheduler 'modules/durable-task-scheduler.bicep' = if (durableBackend == 'scheduler') {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: '${abbrs.durableTaskScheduler}${resourceToken}'
    location: location
    tags: tags
    taskHubName: taskHubName
    skuName: durableSchedulerSku
    principalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: '${abbrs.containerRegistry}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module environment 'modules/environment.bicep' = {
  name: 'environment'
  scope: rg
  params: {
    name: '${abbrs.containerAppsEnvironment}${resourceToken}'
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    gpuProfileType: gpuProfileType
  }
}

module modelCache 'modules/model-cache.bicep' = if (modelCacheShare) {
  name: 'model-cache'
  scope: rg
  params: {
    name: '${abbrs.storageAccount}cache${resourceToken}'
    location: location
    tags: tags
    environmentName: environment.outputs.name
  }
}

module app 'modules/app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    role: 'control'
    name: '${abbrs.containerApp}${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'app' })
    environmentName: environment.outputs.name
    gpuProfileName: environment.outputs.gpuProfileName
    gpuProfileType: gpuProfileType
    identityName: identity.outputs.name
    registryEndpoint: registry.outputs.loginServer
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    contentSafetyEndpoint: contentSafety.outputs.endpoint
    contentSafetyBlocklists: contentSafetyBlocklists
    safetyThresholds: safetyThresholds
    imagegenModel: imagegenModel
    imagegenModelRevision: imagegenModelRevision
    imagegenTinyVae: imagegenTinyVae
    imagegenModels: imagegenModels
    imagegenMaxLoadedModels: imagegenMaxLoadedModels
    // The name the model-cache module registers; empty when weights are baked in.
    modelCacheStorageName: modelCacheShare ? 'model-cache' : ''
    imagegenReview: imagegenReview
    imagegenNotifyUrl: imagegenNotifyUrl
    imagegenNotifyHosts: imagegenNotifyHosts
    imagegenApiKey: imagegenApiKey
    authClientId: signIn == 'entra' ? authClientId : ''
    authClientSecret: signIn == 'entra' ? authClientSecret : ''
    c2paSigner: c2paSigner
    c2paKeyVaultUrl: keyVault.outputs.uri
    c2paCertName: c2paCertName
    c2paCreateCertificate: c2paCreateCertificate
    c2paTsaUrl: c2paTsaUrl
    image: appImageName
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: durableBackend == 'scheduler' ? durableTaskScheduler.outputs.endpoint : ''
  }
  // The pull and data roles must exist before the first revision starts.
  dependsOn: [
    registry
    storage
    contentSafety
    monitoring
    modelCache
    keyVault
    durableTaskScheduler
  ]
}

// The GPU pool: the same image as `app`, rendering the batches `app` orders on the
// render queue, scaled from zero by Container Apps on that queue (app.bicep, role render).
module render 'modules/app.bicep' = {
  name: 'render'
  scope: rg
  params: {
    role: 'render'
    name: '${abbrs.containerApp}gpu-${resourceToken}'
    controlAppName: app.outputs.name
    location: location
    tags: union(tags, { 'azd-service-name': 'render' })
    environmentName: environment.outputs.name
    gpuProfileName: environment.outputs.gpuProfileName
    gpuProfileType: gpuProfileType
    identityName: identity.outputs.name
    registryEndpoint: registry.outputs.loginServer
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    contentSafetyEndpoint: contentSafety.outputs.endpoint
    contentSafetyBlocklists: contentSafetyBlocklists
    safetyThresholds: safetyThresholds
    imagegenModel: imagegenModel
    imagegenModelRevision: imagegenModelRevision
    imagegenTinyVae: imagegenTinyVae
    imagegenModels: imagegenModels
    imagegenMaxLoadedModels: imagegenMaxLoadedModels
    modelCacheStorageName: modelCacheShare ? 'model-cache' : ''
    maxReplicas: maxReplicas
    c2paSigner: c2paSigner
    c2paKeyVaultUrl: keyVault.outputs.uri
    c2paCertName: c2paCertName
    c2paCreateCertificate: c2paCreateCertificate
    c2paTsaUrl: c2paTsaUrl
    image: renderImageName
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: durableBackend == 'scheduler' ? durableTaskScheduler.outputs.endpoint : ''
  }
  dependsOn: [
    registry
    storage
    contentSafety
    monitoring
    modelCache
    keyVault
    durableTaskScheduler
  ]
}

// What azd and the docs need: names, endpoints and the URL. Never a key, a password or a
// connection string.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = environment.outputs.name
output SERVICE_APP_NAME string = app.outputs.name
output SERVICE_APP_URI string = app.outputs.uri
output SERVICE_RENDER_NAME string = render.outputs.name
output APP_URL string = app.outputs.uri
output GALLERY_URL string = '${app.outputs.uri}/api/gallery'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output CONTENT_SAFETY_NAME string = contentSafety.outputs.name
output CONTENT_SAFETY_ENDPOINT string = contentSafety.outputs.endpoint
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AZURE_MANAGED_IDENTITY_NAME string = identity.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output C2PA_CERT_NAME string = c2paCertName
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = durableBackend == 'scheduler' ? durableTaskScheduler.outputs.endpoint : ''
output DURABLE_TASK_SCHEDULER_DASHBOARD_URL string = durableBackend == 'scheduler' ? durableTaskScheduler.outputs.dashboardUrl : ''

// The client id sign-in was configured with (empty: none). The postprovision hook compares it
// with AUTH_CLIENT_ID to tell whether this provision already read what the preprovision hook set.
output SIGN_IN_CLIENT_ID string = signIn == 'entra' ? authClientId : ''
