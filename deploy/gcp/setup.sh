#!/usr/bin/env bash
# Google Cloud set-up for omni-secrets: Secret Manager secrets, their Pub/Sub event topic and one
# subscription, a Google service account with least privilege on each secret, and the Workload
# Identity binding to the Kubernetes service account of deploy/k8s. docs/deploy-gke.md walks
# through it.
#
#   GCP_PROJECT_ID=my-omni-staging deploy/gcp/setup.sh --dry-run   # print the commands only
#   GCP_PROJECT_ID=my-omni-staging deploy/gcp/setup.sh             # run them (gcloud, logged in)
#
# Safe to run twice: existing resources are kept, bindings are idempotent.
#
# Least privilege: the service account gets, on each catalog secret and nothing else, a custom
# role with exactly secretmanager.versions.access and secretmanager.versions.list (the list in
# src/omni_secrets/adapters/gsm_permissions.py; a test keeps them equal).
# roles/secretmanager.secretAccessor alone lacks versions.list, which `db seed`, the first pin and
# every rotation preview need: with it, /readyz never turns green.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: deploy/gcp/setup.sh [--dry-run]

Settings (environment variables):
  GCP_PROJECT_ID           required: the project that holds the secrets
  GCP_REGION               europe-west1 (Artifact Registry, Cloud SQL notes)
  OMNI_GSM_SECRET_PREFIX   apex-omni-  (must match the deployment's OMNI_GSM_SECRET_PREFIX)
  OMNI_SECRET_LOCATIONS    empty = automatic replication; else a comma list of regions
                           (user-managed replication, e.g. europe-west1,europe-west4)
  OMNI_GSA_NAME            omni-secrets (Google service account id)
  OMNI_IAM_ROLE_ID         omniSecretsReader (project custom role)
  OMNI_PUBSUB_TOPIC        omni-secrets-gsm-events
  OMNI_PUBSUB_SUBSCRIPTION omni-secrets-gsm-events (one subscription shared by all replicas)
  K8S_NAMESPACE            omni-secrets
  K8S_SERVICE_ACCOUNT      omni-secrets
  OMNI_KEYS_FROM_GSM       false; true also creates the break-glass private key and integrity key
                           secrets for the gsm-csi component (access only)
  GCP_PROJECT_NUMBER       looked up with gcloud when unset (placeholder under --dry-run)
USAGE
}

die() { echo "setup.sh: $*" >&2; exit 2; }

DRY_RUN=false
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=true ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

[ -n "${GCP_PROJECT_ID:-}" ] || die "GCP_PROJECT_ID is required (the project that holds the secrets)"
PROJECT="$GCP_PROJECT_ID"
REGION="${GCP_REGION:-europe-west1}"
PREFIX="${OMNI_GSM_SECRET_PREFIX:-apex-omni-}"
LOCATIONS="${OMNI_SECRET_LOCATIONS:-}"
GSA_NAME="${OMNI_GSA_NAME:-omni-secrets}"
ROLE_ID="${OMNI_IAM_ROLE_ID:-omniSecretsReader}"
TOPIC="${OMNI_PUBSUB_TOPIC:-omni-secrets-gsm-events}"
SUBSCRIPTION="${OMNI_PUBSUB_SUBSCRIPTION:-omni-secrets-gsm-events}"
NAMESPACE="${K8S_NAMESPACE:-omni-secrets}"
KSA="${K8S_SERVICE_ACCOUNT:-omni-secrets}"
KEYS_FROM_GSM="${OMNI_KEYS_FROM_GSM:-false}"

[[ "$PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "GCP_PROJECT_ID='$PROJECT' is not a valid project id"
[[ "$PREFIX" =~ ^[A-Za-z0-9_-]*$ ]] || die "OMNI_GSM_SECRET_PREFIX='$PREFIX' has characters a secret id cannot have"
case "$KEYS_FROM_GSM" in true|false) ;; *) die "OMNI_KEYS_FROM_GSM='$KEYS_FROM_GSM' must be true or false" ;; esac

# The catalog (contract section 3): secret ids are the prefix plus these.
CATALOG_SUFFIXES=(api-key api-secret api-passphrase zk-seeds zk-l2-key)
# What the service's GSM adapter calls, per secret (src/omni_secrets/adapters/gsm_permissions.py).
SECRET_PERMISSIONS=(secretmanager.secrets.get secretmanager.secrets.update secretmanager.versions.access secretmanager.versions.get secretmanager.versions.list)
KEY_SECRETS=(omni-secrets-breakglass-private-key omni-secrets-integrity-key)

GSA_EMAIL="$GSA_NAME@$PROJECT.iam.gserviceaccount.com"
ROLE="projects/$PROJECT/roles/$ROLE_ID"
TOPIC_NAME="projects/$PROJECT/topics/$TOPIC"

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
for secret in "${SECRETS[@]}"; do
  if exists gcloud secrets describe "$secret" --project="$PROJECT"; then
    run gcloud secrets update "$secret" --project="$PROJECT" --add-topics="$TOPIC_NAME"
  else
    run gcloud secrets create "$secret" --project="$PROJECT" "${REPLICATION[@]}" \
      --topics="$TOPIC_NAME" --labels=app=omni-secrets
  fi
done

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

echo "# 5. Per-secret grants (on each secret, not on the project)"
for secret in "${SECRETS[@]}"; do
  run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
    --member="serviceAccount:$GSA_EMAIL" --role="$ROLE"
done
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
# Next: docs/deploy-gke.md, step 3 (put the ApeX credentials into GSM), then step 4 (Cloud SQL).
NOTES
