// One of the two apps of the deployment, both Azure Functions on Azure Container Apps (kind
// 'functionapp', the native hosting) of one image, running as the one managed identity:
// - role control: the HTTP API, gallery, orchestrations, blob and timer triggers, on the
//   environment's Consumption profile (CPU): one replica, always there;
// - role render: the GPU pool, on the serverless GPU profile, from 0 replicas: Container
//   Apps scales it on its queue trigger (render orders), so the GPU is billed only while it
//   renders (docs/deploy.md, "Paying for the GPU only while rendering").
// Every setting the code reads (imagegen/core/settings.py) is set here or has a default
// there; tests/infra/test_settings_coverage.py keeps the two in step.
param name string
param location string
param tags object
param environmentName string
param gpuProfileName string

@allowed([
  'control'
  'render'
])
@description('control: the app people and clients reach (no GPU); render: the GPU pool.')
param role string

@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfileType string

param identityName string
param registryEndpoint string
param storageAccountName string
param appInsightsName string
param contentSafetyEndpoint string
param contentSafetyBlocklists string = ''
param safetyThresholds string = ''
param imagegenModel string
param imagegenModelRevision string = ''
param imagegenTinyVae string = ''
// A model catalog file inside the image (docs/models.md); empty: IMAGEGEN_MODEL alone.
param imagegenModels string = ''
// Models one replica keeps loaded at once (least recently used unloaded first).
param imagegenMaxLoadedModels string = '1'

@allowed([
  'off'
  'on'
])
@description('Deployment default for review before publish: on holds every job (HTTP, drops, schedules) for a reviewer unless the job says otherwise.')
param imagegenReview string = 'off'

@secure()
@description('Deployment default webhook called when a job awaits review and when it ends; empty: none. Held as a Container Apps secret: its path carries a token.')
param imagegenNotifyUrl string = ''

@description('Comma-separated hosts a job\'s own notify URL may name; empty: jobs may not name one.')
param imagegenNotifyHosts string = ''

@secure()
@description('Key for POST /api/images/generations; held as a Container Apps secret (control only).')
param imagegenApiKey string = ''

@description('Client id of the Entra ID app registration for built-in authentication; empty: none.')
param authClientId string = ''

@secure()
@description('Its client secret (held as a Container Apps secret); empty: sign-in with ID tokens only.')
param authClientSecret string = ''

@allowed([
  'keyvault'
  'off'
])
@description('C2PA signer: keyvault (the certificate c2paCertName in the vault c2paKeyVaultUrl) or off.')
param c2paSigner string = 'keyvault'

@description('URL of the Key Vault holding the C2PA signing certificate.')
param c2paKeyVaultUrl string

@description('Name of the C2PA signing certificate and its key in that vault.')
param c2paCertName string

@allowed([
  'self-signed'
  'off'
])
@description('When that certificate does not exist: self-signed (the app has Key Vault create one) or off.')
param c2paCreateCertificate string = 'self-signed'

@description('RFC 3161 timestamp authority for C2PA signatures; empty: none.')
param c2paTsaUrl string = ''

@description('Name of the environment storage holding the model cache share; empty: weights are baked into the image.')
param modelCacheStorageName string = ''

@minValue(1)
@description('Most GPU replicas of the render pool.')
param maxReplicas int = 1

@description('Host name of the control app, for links in notifications (its ingress fqdn is this plus the environment domain).')
param controlAppName string = name

@description('Image to run; empty before azd has pushed one.')
param image string = ''

@allowed([
  'scheduler'
  'storage'
])
@description('Durable Functions backend: the Durable Task Scheduler, or the task hub in the storage account.')
param durableBackend string = 'scheduler'

@description('Durable Task Scheduler endpoint (with durableBackend scheduler).')
param durableTaskSchedulerEndpoint string = ''

// The port the Functions host listens on in our image (Dockerfile: ASPNETCORE_URLS).
var appPort = 8080

// The first `azd provision` runs before azd has built our image, so the app starts with
// Microsoft's Functions quickstart image. It does not answer on appPort, so that first
// revision stays unhealthy for the minutes until `azd deploy` swaps in our image. The port
// and the probes are not switched for it on purpose: `azd deploy` replaces only the image,
// so whatever the first provision sets is what our image runs with.
var placeholderImage = 'mcr.microsoft.com/azure-functions/dotnet8-quickstart-demo:1.0'

var isControl = role == 'control'

// A serverless GPU replica gets the profile's whole machine: the T4 profile has 8 vCPU and
// 56 GiB, the A100 profile 24 vCPU and 220 GiB. The control app runs no model: one vCPU and
// 2 GiB hold the Functions host, the Python worker and the checks of each job's inputs.
var controlSize = {
  cpu: '1.0'
  memory: '2Gi'
}
var sizes = {
  'Consumption-GPU-NC8as-T4': {
    cpu: '8'
    memory: '56Gi'
  }
  'Consumption-GPU-NC24-A100': {
    cpu: '24'
    memory: '220Gi'
  }
}

var size = isControl ? controlSize : sizes[gpuProfileType]

var cacheEnabled = !empty(modelCacheStorageName)

// Built-in authentication (Easy Auth) with Entra ID, when a registration is given: the
// control app's; the render pool has no ingress.
var signIn = isControl && !empty(authClientId)
var authSecretName = 'microsoft-provider-authentication-secret'
var apiKeySecrets = isControl ? [
  {
    name: 'imagegen-api-key'
    value: imagegenApiKey
  }
] : []
var authSecrets = signIn && !empty(authClientSecret) ? [
  {
    name: authSecretName
    value: authClientSecret
  }
] : []
// The deployment's webhook, when there is one (a Container Apps secret cannot be empty); the
// control app calls it.
var notifies = isControl && !empty(imagegenNotifyUrl)
var notifySecrets = notifies ? [
  {
    name: 'imagegen-notify-url'
    value: imagegenNotifyUrl
  }
] : []
var notifySettings = notifies ? [
  {
    name: 'IMAGEGEN_NOTIFY_URL'
    secretRef: 'imagegen-notify-url'
  }
] : []
// Routes that authenticate with their own keys, and must not meet a sign-in redirect:
// the health probe, the Foundry-compatible route (its clients send `Authorization: Bearer
// <api key>`, which is no Entra token) and the Durable status webhooks (system keys).
var signInExcludedPaths = [
  '/api/health'
  '/api/health/live'
  '/api/images/generations'
  '/runtime/webhooks/durabletask'
]
var useScheduler = durableBackend == 'scheduler'

var cacheMountPath = '/mnt/models'

resource environment 'Microsoft.App/managedEnvironments@2025-02-02-preview' existing = {
  name: environmentName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var settings = [
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'python'
  }
  // Which functions this app registers (function_app.py): the control plane or the GPU pool.
  {
    name: 'IMAGEGEN_APP_ROLE'
    value: role
  }
  // Identity-based AzureWebJobsStorage: the runtime, Durable Functions and imagegen.storage
  // all reach the account with the managed identity; there is no connection string.
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  // The Durable backend. host.json names the Durable Task Scheduler (`azureManaged`) and the
  // setting holding its connection; with durableBackend storage these two overrides (the
  // host's AzureFunctionsJobHost__ convention) put the task hub back in AzureWebJobsStorage.
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type'
    value: useScheduler ? 'azureManaged' : 'AzureStorage'
  }
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName'
    value: useScheduler ? 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING' : 'AzureWebJobsStorage'
  }
  // An address and the identity to use, no secret: the scheduler accepts Entra tokens only.
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: useScheduler ? 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}' : ''
  }
  // azure-identity's DefaultAzureCredential picks the user-assigned identity by this id.
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  // The connection string only addresses the resource: local auth is disabled, so the
  // host authenticates its telemetry with the identity (the authentication string).
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD;ClientId=${identity.properties.clientId}'
  }
  {
    name: 'IMAGEGEN_MODEL'
    value: imagegenModel
  }
  {
    name: 'IMAGEGEN_MODEL_REVISION'
    value: imagegenModelRevision
  }
  // The tiny VAE for jobs with `speedups.tiny_vae`; it must fit the model's family, and the
  // image bakes the same one (HF_HUB_OFFLINE below). Empty: the app refuses such jobs.
  {
    name: 'IMAGEGEN_TINY_VAE'
    value: imagegenTinyVae
  }
  // Models a job may name (`model:`), and how many stay loaded per replica.
  {
    name: 'IMAGEGEN_MODELS'
    value: imagegenModels
  }
  {
    name: 'IMAGEGEN_MAX_LOADED_MODELS'
    value: imagegenMaxLoadedModels
  }
  // cuda, not auto: a GPU replica without a GPU should fail loudly, not generate on CPU.
  // The control app never generates (it renders nothing: IMAGEGEN_APP_ROLE); cpu says so.
  {
    name: 'IMAGEGEN_DEVICE'
    value: isControl ? 'cpu' : 'cuda'
  }
  {
    name: 'SAFETY_PROVIDER'
    value: 'azure'
  }
  {
    name: 'CONTENT_SAFETY_ENDPOINT'
    value: contentSafetyEndpoint
  }
  {
    name: 'CONTENT_SAFETY_BLOCKLISTS'
    value: contentSafetyBlocklists
  }
  {
    name: 'SAFETY_THRESHOLDS'
    value: safetyThresholds
  }
  // Review before publish (docs/deploy.md, "Review and notifications").
  {
    name: 'IMAGEGEN_REVIEW'
    value: imagegenReview
  }
  {
    name: 'IMAGEGEN_NOTIFY_HOSTS'
    value: imagegenNotifyHosts
  }
  // Links in notifications as full URLs: the app's address, which is what ingress.fqdn
  // (the `uri` output) will be, built from its name and the environment's domain because
  // the app's own settings cannot read its fqdn (a self-reference).
  {
    name: 'IMAGEGEN_PUBLIC_URL'
    value: 'https://${controlAppName}.${environment.properties.defaultDomain}'
  }
  // entra: every route but signInExcludedPaths sits behind Entra sign-in, and the platform
  // puts the signed-in user in X-MS-CLIENT-PRINCIPAL-NAME (dropping a client's own copy).
  {
    name: 'IMAGEGEN_SIGN_IN'
    value: signIn ? 'entra' : 'off'
  }
  // C2PA Content Credentials (docs/provenance.md): signed in Key Vault with the app's
  // identity. Without a certificate the app creates a self-signed one at its first start
  // (C2PA_CREATE_CERTIFICATE); a signer that still cannot sign fails closed (images stay
  // in quarantine) and makes /api/health answer 503 with the reason.
  {
    name: 'C2PA_SIGNER'
    value: c2paSigner
  }
  {
    name: 'C2PA_KEYVAULT_URL'
    value: c2paKeyVaultUrl
  }
  {
    name: 'C2PA_CERT_NAME'
    value: c2paCertName
  }
  {
    name: 'C2PA_CREATE_CERTIFICATE'
    value: c2paCreateCertificate
  }
  {
    name: 'C2PA_TSA_URL'
    value: c2paTsaUrl
  }
  // Read by the Functions runtime itself (the schedules timer is `%IMAGEGEN_SCHEDULE_TICK%`,
  // the retention timer `%IMAGEGEN_RETENTION_TICK%`), so they must exist as settings: a
  // default in the code does not reach the runtime.
  {
    name: 'IMAGEGEN_SCHEDULE_TICK'
    value: '0 * * * * *'
  }
  {
    name: 'IMAGEGEN_RETENTION_TICK'
    value: '0 30 3 * * *'
  }
  // Weights: on the cache share (downloaded once, on first use) or baked into the image
  // (then the hub is off limits, so a missing file fails instead of downloading).
  {
    name: 'HF_HOME'
    value: cacheEnabled ? '${cacheMountPath}/hf' : '/opt/hf'
  }
  {
    name: 'HF_HUB_OFFLINE'
    value: cacheEnabled ? '0' : '1'
  }
]

// The Foundry-compatible route's key (control only): a reference to the app's secret, so the
// value is in no setting, log or output (`az containerapp show` lists secret names only).
var apiKeySettings = isControl ? [
  {
    name: 'IMAGEGEN_API_KEY'
    secretRef: 'imagegen-api-key'
  }
] : []

// The probes ask /api/health/live: 200 whenever the host and its Python worker answer.
// Not /api/health, which answers 503 while the C2PA signer cannot sign: that is for people
// to see (and images are held back anyway); restarting the replica or taking it out of the
// ingress for it would hide the reason and stop the gallery and the status routes too.
var probePath = '/api/health/live'

var probes = [
  // The host and the Python worker start in well under a minute; the model loads lazily
  // on the first batch, so the probe path answers before any weights are read.
  {
    type: 'Startup'
    httpGet: {
      path: probePath
      port: appPort
    }
    initialDelaySeconds: 20
    periodSeconds: 15
    timeoutSeconds: 10
    failureThreshold: 10
  }
  {
    type: 'Readiness'
    httpGet: {
      path: probePath
      port: appPort
    }
    periodSeconds: 30
    timeoutSeconds: 10
    failureThreshold: 3
  }
  // Generous: a replica busy with a GPU batch answers slowly, and a restart loses it.
  {
    type: 'Liveness'
    httpGet: {
      path: probePath
      port: appPort
    }
    periodSeconds: 60
    timeoutSeconds: 30
    failureThreshold: 5
  }
]

resource app 'Microsoft.App/containerApps@2025-02-02-preview' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: isControl ? 'Consumption' : gpuProfileName
    configuration: {
      activeRevisionsMode: 'Single'
      // The render pool takes its work from a queue: no ingress, so nothing can call it.
      ingress: isControl ? {
        external: true
        targetPort: appPort
        transport: 'auto'
        allowInsecure: false
      } : null
      registries: [
        {
          server: registryEndpoint
          identity: identity.id
        }
      ]
      secrets: concat(apiKeySecrets, authSecrets, notifySecrets)
    }
    template: {
      containers: [
        {
          name: 'app'
          image: empty(image) ? placeholderImage : image
          env: concat(settings, apiKeySettings, notifySettings)
          resources: {
            cpu: json(size.cpu)
            memory: size.memory
          }
          // HTTP probes need ingress: the render pool has none, and the platform watches
          // its process instead.
          probes: isControl ? probes : []
          volumeMounts: cacheEnabled ? [
            {
              volumeName: 'model-cache'
              mountPath: cacheMountPath
            }
          ] : []
        }
      ]
      // The control app keeps one small CPU replica: the blob drop trigger polls (Functions
      // on Container Apps scales blob triggers only from an Event Grid source), the timers
      // fire every minute, and Durable on Azure Storage cannot scale from zero. The render
      // pool scales from 0 on its queue: its GPU is billed only while batches wait or render.
      scale: {
        minReplicas: isControl ? 1 : 0
        maxReplicas: isControl ? 1 : maxReplicas
        // No `rules`: on a `kind: functionapp` app Container Apps makes the KEDA rules itself
        // from the Functions triggers it finds, and blocks rules a template supplies unless
        // `allowScalingRuleOverride` (API 2026-03-02-preview) says otherwise (Microsoft's
        // "Override auto-generated KEDA scale rules for Azure Functions on Container Apps").
      }
      volumes: cacheEnabled ? [
        {
          name: 'model-cache'
          storageType: 'AzureFile'
          storageName: modelCacheStorageName
          // The image runs as uid 1000 (Dockerfile), which must own what it downloads.
          mountOptions: 'uid=1000,gid=1000,dir_mode=0755,file_mode=0644'
        }
      ] : []
    }
  }
}

// Sign-in for the gallery and review: Container Apps built-in authentication with Entra ID.
// It runs in front of the Functions host on every replica; unauthenticated browsers are sent
// to the Entra sign-in page, scripts without a session or token get 401.
resource auth 'Microsoft.App/containerApps/authConfigs@2024-03-01' = if (signIn) {
  parent: app
  name: 'current'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: signInExcludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          // The name of the Container Apps secret that holds it, never the value.
          clientSecretSettingName: empty(authClientSecret) ? null : authSecretName
          openIdIssuer: '${az.environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          // Browser sessions, and scripts with a token for the app (`az account get-access-token --resource api://<client id>`).
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      preserveUrlFragmentsForLogins: true
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

output name string = app.name
// The render pool has no ingress, so no address.
output uri string = isControl ? 'https://${app.properties.configuration.ingress.fqdn}' : ''

