# Everything Terraform derives from shared/topology.json -- the single definition of the pipeline
# shared with the Python code -- and from the variables. Only locals live here, no resources, so
# tests/test_terraform.py evaluates this file with `terraform console` and compares the result
# with the JSON: which functions exist, and what each one may read, write, publish and sign.

locals {
  # Topic ids carry the name prefix too, so two environments can share a project; the functions get
  # the same prefix as CLOSET_TOPIC_PREFIX (shared/topology.py applies it).
  topic_prefix  = "${var.name_prefix}-"
  topology_file = jsondecode(file("${path.module}/../shared/topology.json"))
  topology = merge(local.topology_file, {
    topics = { for key, topic in local.topology_file.topics : key => "${local.topic_prefix}${topic}" }
    stages = [for stage in local.topology_file.stages : merge(stage, { topic = "${local.topic_prefix}${stage.topic}" })]
  })

  stages = { for stage in local.topology.stages : stage.name => stage }

  # The stage subscriptions' retry policy and the links' lifetime: topology.json's, which the local
  # topology runs with too, unless a variable overrides it for this deployment.
  max_delivery_attempts         = coalesce(var.max_delivery_attempts, local.topology.delivery.maxDeliveryAttempts)
  retry_minimum_backoff_seconds = coalesce(var.retry_minimum_backoff_seconds, local.topology.delivery.minimumBackoffSeconds)
  retry_maximum_backoff_seconds = coalesce(var.retry_maximum_backoff_seconds, local.topology.delivery.maximumBackoffSeconds)
  link_lifetime_seconds         = coalesce(var.signed_url_ttl_seconds, local.topology.links.resultSeconds)

  # The settings a function's `enabledBy` may name (a variable of the same name): the function,
  # its subscription and its grants exist only while that one is set.
  switches = {
    webhook_url = var.webhook_url != ""
  }

  # Functions pushed from a subscription of their own on a shared topic (the webhook on results),
  # each with its own dead-letter topic and retry policy; deployed only when switched on.
  subscribers = {
    for subscriber in try(local.topology.subscribers, []) : subscriber.name => subscriber
    if try(local.switches[subscriber.enabledBy], true)
  }

  # The stage that receives uploads: the one no other stage names as its `next` (one() fails the
  # plan if the topology ever has zero or several).
  entry_stage = one([
    for stage in local.topology.stages : stage.name
    if !contains(compact([for other in local.topology.stages : other.next]), stage.name)
  ])

  # A `publishes` entry names a stage (meaning that stage's topic) or a key of topology.topics.
  topic_of = merge(local.topology.topics, { for name, stage in local.stages : name => stage.topic })

  # Every function, normalised: the stages (pushed from their topic), the failure handler (pushed
  # from the dead-letter topic) and the HTTP functions (called by the app backend).
  functions = merge(
    {
      for stage in local.topology.stages : stage.name => {
        kind            = "stage"
        trigger         = "pubsub"
        entry_point     = stage.entryPoint
        signs_urls      = try(stage.signsUrls, false)
        description     = "Pipeline stage ${stage.name}: pushed from topic ${stage.topic}."
        reads           = stage.reads
        writes          = stage.writes
        publishes       = stage.publishes
        memory          = stage.memory
        cpu             = stage.cpu
        timeout_seconds = stage.timeoutSeconds
        concurrency     = stage.concurrency
        max_instances   = stage.maxInstances
      }
    },
    {
      (local.topology.failureHandler.name) = {
        kind            = "failure_handler"
        trigger         = "pubsub"
        entry_point     = local.topology.failureHandler.entryPoint
        signs_urls      = try(local.topology.failureHandler.signsUrls, false)
        description     = "Failure handler: pushed from dead-letter topic ${local.topology.topics.deadLetter}."
        reads           = local.topology.failureHandler.reads
        writes          = local.topology.failureHandler.writes
        publishes       = local.topology.failureHandler.publishes
        memory          = local.topology.failureHandler.memory
        cpu             = local.topology.failureHandler.cpu
        timeout_seconds = local.topology.failureHandler.timeoutSeconds
        concurrency     = local.topology.failureHandler.concurrency
        max_instances   = local.topology.failureHandler.maxInstances
      }
    },
    {
      for name, subscriber in local.subscribers : name => {
        kind            = "subscriber"
        trigger         = "pubsub"
        entry_point     = subscriber.entryPoint
        signs_urls      = try(subscriber.signsUrls, false)
        description     = "Subscriber ${name}: pushed from its own subscription on topic ${local.topic_of[subscriber.topic]}."
        reads           = subscriber.reads
        writes          = subscriber.writes
        publishes       = subscriber.publishes
        memory          = subscriber.memory
        cpu             = subscriber.cpu
        timeout_seconds = subscriber.timeoutSeconds
        concurrency     = subscriber.concurrency
        max_instances   = subscriber.maxInstances
      }
    },
    {
      for function in local.topology.httpFunctions : function.name => {
        kind            = "http"
        trigger         = "http"
        entry_point     = function.entryPoint
        signs_urls      = try(function.signsUrls, false)
        description     = "HTTP function ${function.name}: called by the app backend."
        reads           = function.reads
        writes          = function.writes
        publishes       = function.publishes
        memory          = function.memory
        cpu             = function.cpu
        timeout_seconds = function.timeoutSeconds
        concurrency     = function.concurrency
        max_instances   = function.maxInstances
      }
    },
  )

  # Functions Pub/Sub pushes to (every stage, the failure handler, the subscribers) and those the app calls.
  pushed_functions = { for name, function in local.functions : name => function if function.trigger == "pubsub" }
  http_functions   = { for name, function in local.functions : name => function if function.trigger == "http" }

  # -- what each function may touch (granted in iam.tf, one for_each per kind) ---------------

  # Areas a function reads but does not write (writing includes reading).
  bucket_reads = {
    for grant in flatten([
      for name, function in local.functions : [
        for area in function.reads : { function = name, area = area } if !contains(function.writes, area)
      ]
    ]) : "${grant.function}/${grant.area}" => grant
  }

  # Areas a pipeline function writes: outputs are created with generation preconditions
  # (if_generation_match=0) and job-state objects are compare-and-swapped, which needs get,
  # create, overwrite and delete -- objectUser, on that bucket only.
  bucket_writes = {
    for grant in flatten([
      for name, function in local.pushed_functions : [
        for area in function.writes : { function = name, area = area }
      ]
    ]) : "${grant.function}/${grant.area}" => grant
  }

  # An HTTP function "writes" an area by signing upload URLs for it: a V4 signed URL carries the
  # signer's permissions, and a PUT needs storage.objects.create and nothing more -- objectCreator.
  bucket_signed_uploads = {
    for grant in flatten([
      for name, function in local.http_functions : [
        for area in function.writes : { function = name, area = area }
      ]
    ]) : "${grant.function}/${grant.area}" => grant
  }

  # Topics a function publishes to (stage names map to their topic, see local.topic_of).
  topic_publishes = {
    for grant in flatten([
      for name, function in local.functions : [
        for target in function.publishes : { function = name, topic = local.topic_of[target] }
      ]
    ]) : "${grant.function}/${grant.topic}" => grant
  }

  # Functions that sign URLs (topology.json `signsUrls`): upload_url (upload URLs), status and the
  # webhook (result links, signed per hand-out). Without a key file, signing is signBlob as itself.
  url_signers = { for name, function in local.functions : name => function if function.signs_urls }

  # -- secrets each function consumes (secrets.tf) -------------------------------------------

  # Third parties' keys get their value from the operator (`generated = false`) and are mounted
  # only once the feature is switched on; the upload-URL bearer secret, shared by the app backend
  # and the HTTP functions only, is generated by Terraform and always mounted.
  secrets = {
    removebg-api-key = {
      env       = "CLOSET_REMOVEBG_API_KEY"
      consumers = ["remove_background"] # the stage that runs the background-removal providers
      mounted   = contains(var.background_providers, "removebg")
      generated = false
      feature   = "background_providers (it includes \"removebg\")"
    }
    gemini-api-key = {
      env       = "CLOSET_GEMINI_API_KEY"
      consumers = ["expand"] # the stage that calls the generative model
      mounted   = var.gemini_enabled
      generated = false
      feature   = "gemini_enabled"
    }
    webhook-secret = {
      env       = "CLOSET_WEBHOOK_SECRET"
      consumers = [for name, subscriber in local.subscribers : name if subscriber.topic == "results"] # the webhook
      mounted   = var.webhook_url != ""
      generated = false
      feature   = "webhook_url"
    }
    upload-url-secret = {
      env       = "CLOSET_UPLOAD_URL_SECRET" # read by shared/http/upload_url.py: Authorization: Bearer <it>
      consumers = keys(local.http_functions)
      mounted   = true
      generated = true
      feature   = "the HTTP functions"
    }
  }

  generated_secrets = { for name, spec in local.secrets : name => spec if spec.generated }

  # Secret ids carry the name prefix, like everything else (two environments, one project).
  secret_ids = { for name in keys(local.secrets) : name => "${var.name_prefix}-${name}" }

  # Third parties' secrets that a switched-on feature mounts: their latest version must exist
  # before the plan may go on (secrets.tf).
  required_secret_versions = { for name, spec in local.secrets : name => spec if spec.mounted && !spec.generated }

  # One entry per (function, secret) actually mounted: drives both the mount and the grant.
  secret_mounts = flatten([
    for secret, spec in local.secrets : [
      for function in spec.consumers : { key = "${function}/${secret}", function = function, secret = secret, env = spec.env }
    ] if spec.mounted
  ])
}
