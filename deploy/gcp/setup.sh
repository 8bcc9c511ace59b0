#!/usr/bin/env bash
# Google Cloud set-up for omni-secrets: Secret Manager secrets (with GSM's rotation reminder and
# delayed destruction), the audit-anchor secret, their Pub/Sub event topic and one subscription,
# a Google service account with least privilege on each secret, and the Workload Identity binding
# to the Kubernetes service account of deploy/k8s. It ends by printing the settings the
# deployment needs (project number, subscription path). docs/deploy-gke.md walks through it.
#
#   GCP_PROJECT_ID=my-omni-staging deploy/gcp/setup.sh --dry-run   # print the commands only
#   GCP_PROJECT_ID=my-omni-staging deploy/gcp/setup.sh             # run them (gcloud, logged in)
#
# Safe to run twice: existing resources are kept, bindings are idempotent.
#
# Least privilege: the service account gets, on each catalog secret and nothing else, a custom
# role with exactly the permissions in src/omni_secrets/adapters/gsm_permissions.py (a test keeps
# them equal), and on the audit-anchor secret only a second custom role with
# secretmanager.secrets.get and secretmanager.secrets.update (it writes the audit chain head into
# that secret's annotations; no version, no payload).
# roles/secretmanager.secretAccessor alone lacks versions.list, which `db seed`, the first pin and
# every rotation preview need: with it, /readyz never turns green.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: deploy/gcp/setup.sh [--dry-run] [--allow-dev-env]

  --allow-dev-env          run although this shell has omni-secrets dev's settings (sourced
                           .omni-dev/env: OMNI_GSM_ENDPOINT set, or GCP_PROJECT_ID=omni-dev);
                           refused without it, so the dev project is never targeted by accident

Settings (environment variables):
  GCP_PROJECT_ID           required: the project that holds the secrets
  GCP_REGION               europe-west1 (Artifact Registry, Cloud SQL notes)
  OMNI_GSM_SECRET_PREFIX   apex-omni-  (must match the deployment's OMNI_GSM_SECRET_PREFIX)
  OMNI_SECRET_LOCATIONS    empty = automatic replication; else a comma list of regions
                           (user-managed replication, e.g. europe-west1,europe-west4)
  OMNI_GSA_NAME            omni-secrets (Google service account id)
  OMNI_IAM_ROLE_ID         omniSecretsReader (project custom role)
  OMNI_ANCHOR_ROLE_ID      omniSecretsAnchorWriter (custom role, bound on the anchor secret only)
  OMNI_PUBSUB_TOPIC        omni-secrets-gsm-events
  OMNI_PUBSUB_SUBSCRIPTION omni-secrets-gsm-events (one subscription shared by all replicas):
                           an id, or projects/<GCP_PROJECT_ID>/subscriptions/<id> as the
                           service takes it; the full path is printed at the end either way
  OMNI_ROTATION_PERIOD_DAYS  365 and OMNI_ROTATION_WARNING_DAYS 30 (as the service's): a new
                           secret's first GSM rotation reminder is period - warning from now;
                           every rotation commit moves it (an existing reminder is kept)
  OMNI_VERSION_DESTROY_TTL_DAYS 7 (a destroyed version stays DISABLED, recoverable, this long)
  K8S_NAMESPACE            omni-secrets
  K8S_SERVICE_ACCOUNT      omni-secrets
  OMNI_KEYS_FROM_GSM       false; true also creates the break-glass private key and integrity key
                           secrets for the gsm-csi component (access only)
  GCP_PROJECT_NUMBER       looked up with gcloud when unset (placeholder under --dry-run)
USAGE
}

die() { echo "setup.sh: $*" >&2; exit 2; }

DRY_RUN=false
ALLOW_DEV_ENV=false
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=true ;;
    --allow-dev-env) ALLOW_DEV_ENV=true ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

[ -n "${GCP_PROJECT_ID:-}" ] || die "GCP_PROJECT_ID is required (the project that holds the secrets)"
# `source .omni-dev/env` (omni-secrets dev) exports GCP_PROJECT_ID=omni-dev and the emulator's
# OMNI_GSM_ENDPOINT: a shell that did so must not silently set up the dev project for real.
if [ "$ALLOW_DEV_ENV" = false ] && { [ -n "${OMNI_GSM_ENDPOINT:-}" ] || [ "$GCP_PROJECT_ID" = omni-dev ]; }; then
  die "this shell has omni-secrets dev's settings (GCP_PROJECT_ID=$GCP_PROJECT_ID, OMNI_GSM_ENDPOINT=${OMNI_GSM_ENDPOINT:-unset}; sourced .omni-dev/env?): open a new shell or unset them, or pass --allow-dev-env"
fi
PROJECT="$GCP_PROJECT_ID"
REGION="${GCP_REGION:-europe-west1}"
PREFIX="${OMNI_GSM_SECRET_PREFIX:-apex-omni-}"
LOCATIONS="${OMNI_SECRET_LOCATIONS:-}"
GSA_NAME="${OMNI_GSA_NAME:-omni-secrets}"
ROLE_ID="${OMNI_IAM_ROLE_ID:-omniSecretsReader}"
ANCHOR_ROLE_ID="${OMNI_ANCHOR_ROLE_ID:-omniSecretsAnchorWriter}"
TOPIC="${OMNI_PUBSUB_TOPIC:-omni-secrets-gsm-events}"
SUBSCRIPTION="${OMNI_PUBSUB_SUBSCRIPTION:-omni-secrets-gsm-events}"
PERIOD_DAYS="${OMNI_ROTATION_PERIOD_DAYS:-365}"
WARNING_DAYS="${OMNI_ROTATION_WARNING_DAYS:-30}"
DESTROY_TTL_DAYS="${OMNI_VERSION_DESTROY_TTL_DAYS:-7}"
NAMESPACE="${K8S_NAMESPACE:-omni-secrets}"
KSA="${K8S_SERVICE_ACCOUNT:-omni-secrets}"
KEYS_FROM_GSM="${OMNI_KEYS_FROM_GSM:-false}"

[[ "$PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "GCP_PROJECT_ID='$PROJECT' is not a valid project id"
[[ "$PREFIX" =~ ^[A-Za-z0-9_-]*$ ]] || die "OMNI_GSM_SECRET_PREFIX='$PREFIX' has characters a secret id cannot have"
case "$KEYS_FROM_GSM" in true|false) ;; *) die "OMNI_KEYS_FROM_GSM='$KEYS_FROM_GSM' must be true or false" ;; esac
# The service takes OMNI_PUBSUB_SUBSCRIPTION as projects/P/subscriptions/S; gcloud takes the id.
if [[ "$SUBSCRIPTION" =~ ^projects/([^/]+)/subscriptions/([^/]+)$ ]]; then
  [ "${BASH_REMATCH[1]}" = "$PROJECT" ] || die "OMNI_PUBSUB_SUBSCRIPTION='$SUBSCRIPTION' is in project ${BASH_REMATCH[1]}, not GCP_PROJECT_ID=$PROJECT"
  SUBSCRIPTION="${BASH_REMATCH[2]}"
fi
[[ "$SUBSCRIPTION" =~ ^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$ ]] || die "OMNI_PUBSUB_SUBSCRIPTION='$SUBSCRIPTION' is not a subscription id nor projects/$PROJECT/subscriptions/<id>"
for days in PERIOD_DAYS WARNING_DAYS DESTROY_TTL_DAYS; do
  [[ "${!days}" =~ ^[1-9][0-9]{0,4}$ ]] || die "$days='${!days}' must be a whole number of days (1 or more)"
done
[ "$WARNING_DAYS" -lt "$PERIOD_DAYS" ] || die "OMNI_ROTATION_WARNING_DAYS=$WARNING_DAYS must be less than OMNI_ROTATION_PERIOD_DAYS=$PERIOD_DAYS"

# The catalog (contract section 3): secret ids are the prefix plus these.
CATALOG_SUFFIXES=(api-key api-secret api-passphrase zk-seeds zk-l2-key)
# What the service's GSM adapter calls, per secret (src/omni_secrets/adapters/gsm_permissions.py).
SECRET_PERMISSIONS=(secretmanager.secrets.get secretmanager.secrets.update secretmanager.versions.access secretmanager.versions.get secretmanager.versions.list)
KEY_SECRETS=(omni-secrets-breakglass-private-key omni-secrets-integrity-key)
# The audit chain head is written to this secret's annotations (contract section 17): no versions.
# Its permissions: ANCHOR_PERMISSIONS in src/omni_secrets/adapters/gsm_permissions.py.
ANCHOR_SECRET="${PREFIX}audit-anchor"
ANCHOR_PERMISSIONS=(secretmanager.secrets.get secretmanager.secrets.update)

GSA_EMAIL="$GSA_NAME@$PROJECT.iam.gserviceaccount.com"
ROLE="projects/$PROJECT/roles/$ROLE_ID"
ANCHOR_ROLE="projects/$PROJECT/roles/$ANCHOR_ROLE_ID"
TOPIC_NAME="projects/$PROJECT/topics/$TOPIC"
SUBSCRIPTION_NAME="projects/$PROJECT/subscriptions/$SUBSCRIPTION"

# GSM's own reminder (contract section 15): SECRET_ROTATE at dueAt - warning window, then daily.
# A new secret has no key yet; its first reminder assumes a key added today. The service moves
# it at every rotation commit, rollback and adoption.
REMINDER_DAYS=$((PERIOD_DAYS - WARNING_DAYS))
if REMINDER_AT="$(date -u -d "+$REMINDER_DAYS days" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"; then :
else REMINDER_AT="$(date -u -v "+${REMINDER_DAYS}d" +%Y-%m-%dT%H:%M:%SZ)"; fi
ROTATION=(--next-rotation-time="$REMINDER_AT" --rotation-period=86400s)
DESTROY_TTL=(--version-destroy-ttl="$((DESTROY_TTL_DAYS * 86400))s")

if [ "$LOCATIONS" = "" ]; then
  REPLICATION=(--replication-policy=automatic)
else
  REPLICATION=(--replication-policy=user-managed "--locations=$LOCATIONS")
fi

# run CMD...: print the command (shell-quoted); execute it unless --dry-run.
run() {
  printf '%q ' "$@" | sed 's/ $//'
  echo
  if [ "$DRY_RUN" = false ]; then "$@"; fi
}

# exists CMD...: true when the describe command succeeds. Under --dry-run nothing is asked and
# everything is treated as missing, so the full set of commands is printed.
exists() {
  if [ "$DRY_RUN" = true ]; then return 1; fi
  "$@" >/dev/null 2>&1
}

joined() { local IFS=,; echo "$*"; }

if [ "$DRY_RUN" = false ]; then
  command -v gcloud >/dev/null 2>&1 || die "gcloud is not on PATH (https://cloud.google.com/sdk/docs/install)"
fi

echo "# omni-secrets set-up for project $PROJECT (dry run: $DRY_RUN)"

echo "# 1. APIs"
run gcloud services enable secretmanager.googleapis.com pubsub.googleapis.com iam.googleapis.com \
  container.googleapis.com artifactregistry.googleapis.com sqladmin.googleapis.com --project="$PROJECT"

echo "# 2. Pub/Sub: GSM publishes every secret event to one topic; all replicas share one subscription"
if ! exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT"; then
  run gcloud pubsub topics create "$TOPIC" --project="$PROJECT"
fi
if [ -n "${GCP_PROJECT_NUMBER:-}" ]; then
  PROJECT_NUMBER="$GCP_PROJECT_NUMBER"
elif [ "$DRY_RUN" = true ]; then
  PROJECT_NUMBER="PROJECT_NUMBER"
else
  PROJECT_NUMBER="$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')"
fi
# Secret Manager's service agent must be allowed to publish, or creating a secret with a topic fails.
run gcloud beta services identity create --service=secretmanager.googleapis.com --project="$PROJECT"
run gcloud pubsub topics add-iam-policy-binding "$TOPIC" --project="$PROJECT" \
  --member="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-secretmanager.iam.gserviceaccount.com" \
  --role=roles/pubsub.publisher
# A 10 s ack deadline (contract section 18): a message leased by a replica that dies goes to a
# live one within about 10 s (the subscriber also asks for 10 s leases on its stream).
if ! exists gcloud pubsub subscriptions describe "$SUBSCRIPTION" --project="$PROJECT"; then
  run gcloud pubsub subscriptions create "$SUBSCRIPTION" --project="$PROJECT" --topic="$TOPIC" \
    --ack-deadline=10 --message-retention-duration=1d --expiration-period=never
fi

echo "# 3. Secrets (empty: add the first versions with 'gcloud secrets versions add ... --data-file=-')"
SECRETS=()
for suffix in "${CATALOG_SUFFIXES[@]}"; do SECRETS+=("$PREFIX$suffix"); done
# Each notifies the topic, carries GSM's rotation reminder and destroys versions only after
# OMNI_VERSION_DESTROY_TTL_DAYS (DISABLED meanwhile: `gsm versions enable` undoes a mistake).
for secret in "${SECRETS[@]}"; do
  if exists gcloud secrets describe "$secret" --project="$PROJECT"; then
    # Keep a reminder the service already moved; set one only where none is scheduled.
    KEEP=()
    if [ -z "$(gcloud secrets describe "$secret" --project="$PROJECT" --format='value(rotation.nextRotationTime)')" ]; then
      KEEP=("${ROTATION[@]}")
    fi
    run gcloud secrets update "$secret" --project="$PROJECT" --add-topics="$TOPIC_NAME" \
      "${KEEP[@]}" "${DESTROY_TTL[@]}"
  else
    run gcloud secrets create "$secret" --project="$PROJECT" "${REPLICATION[@]}" \
      --topics="$TOPIC_NAME" --labels=app=omni-secrets "${ROTATION[@]}" "${DESTROY_TTL[@]}"
  fi
done

echo "# 3b. The audit anchor: the service writes the audit chain head to its annotations (no versions)"
if ! exists gcloud secrets describe "$ANCHOR_SECRET" --project="$PROJECT"; then
  run gcloud secrets create "$ANCHOR_SECRET" --project="$PROJECT" "${REPLICATION[@]}" \
    --labels=app=omni-secrets,purpose=audit-anchor
fi

echo "# 4. The Google service account and its custom role (exactly what the service calls)"
if ! exists gcloud iam service-accounts describe "$GSA_EMAIL" --project="$PROJECT"; then
  run gcloud iam service-accounts create "$GSA_NAME" --project="$PROJECT" \
    --display-name="omni-secrets (reads the ApeX Omni credentials)"
fi
if exists gcloud iam roles describe "$ROLE_ID" --project="$PROJECT"; then
  run gcloud iam roles update "$ROLE_ID" --project="$PROJECT" \
    --permissions="$(joined "${SECRET_PERMISSIONS[@]}")"
else
  run gcloud iam roles create "$ROLE_ID" --project="$PROJECT" --stage=GA \
    --title="omni-secrets secret reader" \
    --description="Read and list the versions of one secret (granted per secret, never per project)" \
    --permissions="$(joined "${SECRET_PERMISSIONS[@]}")"
fi
if exists gcloud iam roles describe "$ANCHOR_ROLE_ID" --project="$PROJECT"; then
  run gcloud iam roles update "$ANCHOR_ROLE_ID" --project="$PROJECT" \
    --permissions="$(joined "${ANCHOR_PERMISSIONS[@]}")"
else
  run gcloud iam roles create "$ANCHOR_ROLE_ID" --project="$PROJECT" --stage=GA \
    --title="omni-secrets audit anchor writer" \
    --description="Read and update one secret's metadata (the audit anchor); no version access" \
    --permissions="$(joined "${ANCHOR_PERMISSIONS[@]}")"
fi

echo "# 5. Per-secret grants (on each secret, not on the project)"
for secret in "${SECRETS[@]}"; do
  run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
    --member="serviceAccount:$GSA_EMAIL" --role="$ROLE"
done
# The anchor: secrets.get and secrets.update on that one secret (annotations), nothing else.
run gcloud secrets add-iam-policy-binding "$ANCHOR_SECRET" --project="$PROJECT" \
  --member="serviceAccount:$GSA_EMAIL" --role="$ANCHOR_ROLE"
run gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --project="$PROJECT" \
  --member="serviceAccount:$GSA_EMAIL" --role=roles/pubsub.subscriber
# pubsub.subscriptions.get, on this subscription only: the subscriber's connection probe
# (GetSubscription) that drives the status' events.connected.
run gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --project="$PROJECT" \
  --member="serviceAccount:$GSA_EMAIL" --role=roles/pubsub.viewer

if [ "$KEYS_FROM_GSM" = true ]; then
  echo "# 5b. Key files for the gsm-csi component (the CSI driver only reads: access, no list)"
  for secret in "${KEY_SECRETS[@]}"; do
    if ! exists gcloud secrets describe "$secret" --project="$PROJECT"; then
      run gcloud secrets create "$secret" --project="$PROJECT" "${REPLICATION[@]}" --labels=app=omni-secrets
    fi
    run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
      --member="serviceAccount:$GSA_EMAIL" --role=roles/secretmanager.secretAccessor
  done
fi

echo "# 6. Workload Identity: pods of $NAMESPACE/$KSA act as $GSA_EMAIL"
run gcloud iam service-accounts add-iam-policy-binding "$GSA_EMAIL" --project="$PROJECT" \
  --role=roles/iam.workloadIdentityUser \
  --member="serviceAccount:$PROJECT.svc.id.goog[$NAMESPACE/$KSA]"

echo "# 7. Container registry for the image (make image, then push)"
if ! exists gcloud artifacts repositories describe omni --location="$REGION" --project="$PROJECT"; then
  run gcloud artifacts repositories create omni --repository-format=docker \
    --location="$REGION" --project="$PROJECT"
fi

cat <<NOTES
# 8. Cloud SQL for PostgreSQL (not automated here: sizing, HA and network are yours to decide)
#   - PostgreSQL 15+, private IP in the cluster's VPC, HA (regional) in production,
#     automated backups + point-in-time recovery; region $REGION.
#   - Two roles: an OWNER role that owns the schema (the migration Job: db upgrade, db seed) and a
#     RUNTIME role with DML only (the Deployment). Keep their URLs in the Kubernetes Secrets
#     omni-secrets-migrate and omni-secrets-runtime (key database-url), e.g.
#     postgresql+psycopg://omni_runtime:PASSWORD@10.x.y.z:5432/omni_secrets?sslmode=require
#   - NetworkPolicy egress allows TCP 5432; narrow it to the instance's IP range in the overlay.
NOTES

cat <<SETTINGS
# 9. Settings the deployment needs (deploy/k8s/overlays/<env>/project.yaml, config.env):
GCP_PROJECT_ID=$PROJECT
OMNI_GCP_PROJECT_NUMBER=$PROJECT_NUMBER
OMNI_PUBSUB_SUBSCRIPTION=$SUBSCRIPTION_NAME
OMNI_GSM_SECRET_PREFIX=$PREFIX
# Next: docs/deploy-gke.md, step 3 (put the ApeX credentials into GSM), then step 4 (Cloud SQL).
SETTINGS
