/*
 * roles_builtin.c - the built-in role definitions: Azure's role ids, names and action lists.
 *
 * Data only: rbac.c turns each entry into a role of every rp_rbac it creates (so the table is
 * validated by the same rules as a custom role, and a typo fails rp_rbac_create in the unit
 * tests). One entry per role, lists in the order Azure publishes them, so an entry can be
 * compared line by line with the JSON in Microsoft's "Azure built-in roles" reference
 * (MicrosoftDocs/azure-docs, articles/role-based-access-control/built-in-roles/{privileged,
 * general,security,integration,storage,web-and-mobile,identity}.md). Every built-in role is
 * assignable at "/" with the default PIM maximum activation.
 *
 * Only the roles of services rampart runs are here. Actions of Azure providers rampart does
 * not have (Microsoft.Support, Microsoft.Insights/alertRules ...) are kept as published: they
 * match nothing today and keep the lists recognisable.
 */
#include "iam/rbac.h"

/* A NULL-terminated list as a static compound literal. */
#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The control-plane actions the Key Vault data roles share (security.md). */
#define KV_READ_ACTIONS                                                                            \
    "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",                           \
        "Microsoft.Resources/deployments/*",                                                       \
        "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",            \
        "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",  \
        "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read",                 \
        "Microsoft.KeyVault/operations/read"

#define KV_ONLY_RBAC                                                                               \
    " Only works for key vaults that use the 'Azure role-based access control' permission model."

const rp__rbac_builtin rp__rbac_builtins[] = {
    /* privileged.md */
    {
        .id = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        .name = "Owner",
        .description =
            "Grants full access to manage all resources, including the ability to assign "
            "roles in Azure RBAC.",
        .actions = L("*"),
    },
    {
        .id = "b24988ac-6180-42a0-ab88-20f7382dd24c",
        .name = "Contributor",
        .description = "Grants full access to manage all resources, but does not allow you to "
                       "assign roles in Azure RBAC, manage assignments in Azure Blueprints, or "
                       "share image galleries.",
        .actions = L("*"),
        .not_actions =
            L("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
              "Microsoft.Authorization/elevateAccess/Action",
              "Microsoft.Blueprint/blueprintAssignments/write",
              "Microsoft.Blueprint/blueprintAssignments/delete",
              "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write",
              "Microsoft.Purview/consents/delete",
              "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
              "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action"),
    },
    /* general.md */
    {
        .id = "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        .name = "Reader",
        .description = "View all resources, but does not allow you to make any changes.",
        .actions = L("*/read"),
    },
    /* privileged.md */
    {
        .id = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        .name = "User Access Administrator",
        .description = "Lets you manage user access to Azure resources.",
        .actions = L("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    },
    {
        .id = "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        .name = "Role Based Access Control Administrator",
        .description = "Manage access to Azure resources by assigning roles using Azure RBAC. This "
                       "role does not allow you to manage access using other ways, such as Azure "
                       "Policy.",
        .actions =
            L("Microsoft.Authorization/roleAssignments/write",
              "Microsoft.Authorization/roleAssignments/delete", "*/read", "Microsoft.Support/*"),
    },
    /* security.md */
    {
        .id = "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        .name = "Key Vault Administrator",
        .description = "Perform all data plane operations on a key vault and all objects in it, "
                       "including certificates, keys, and secrets. Cannot manage key vault "
                       "resources or manage role assignments." KV_ONLY_RBAC,
        .actions = L(KV_READ_ACTIONS),
        .data_actions = L("Microsoft.KeyVault/vaults/*"),
    },
    {
        .id = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
        .name = "Key Vault Certificate User",
        .description = "Read certificate contents." KV_ONLY_RBAC,
        .data_actions = L("Microsoft.KeyVault/vaults/certificates/read",
                          "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                          "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
                          "Microsoft.KeyVault/vaults/keys/read"),
    },
    {
        .id = "a4417e6f-fecd-4de8-b567-7b0420556985",
        .name = "Key Vault Certificates Officer",
        .description = "Perform any action on the certificates of a key vault, except manage "
                       "permissions." KV_ONLY_RBAC,
        .actions = L(KV_READ_ACTIONS),
        .data_actions = L("Microsoft.KeyVault/vaults/certificatecas/*",
                          "Microsoft.KeyVault/vaults/certificates/*",
                          "Microsoft.KeyVault/vaults/certificatecontacts/write"),
    },
    {
        .id = "f25e0fa2-a7c8-4377-a976-54943a77a395",
        .name = "Key Vault Contributor",
        .description = "Lets you manage key vaults, but not access to them.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
              "Microsoft.KeyVault/*", "Microsoft.Resources/deployments/*",
              "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"),
        .not_actions = L("Microsoft.KeyVault/locations/deletedVaults/purge/action",
                         "Microsoft.KeyVault/hsmPools/*", "Microsoft.KeyVault/managedHsms/*"),
    },
    {
        .id = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        .name = "Key Vault Crypto Officer",
        .description = "Perform any action on the keys of a key vault, except manage "
                       "permissions." KV_ONLY_RBAC,
        .actions = L(KV_READ_ACTIONS),
        .data_actions = L("Microsoft.KeyVault/vaults/keys/*",
                          "Microsoft.KeyVault/vaults/keyrotationpolicies/*"),
    },
    {
        .id = "e147488a-f6f5-4113-8e2d-b22465e65bf6",
        .name = "Key Vault Crypto Service Encryption User",
        .description = "Read metadata of keys and perform wrap/unwrap operations." KV_ONLY_RBAC,
        .actions = L("Microsoft.EventGrid/eventSubscriptions/write",
                     "Microsoft.EventGrid/eventSubscriptions/read",
                     "Microsoft.EventGrid/eventSubscriptions/delete"),
        .data_actions =
            L("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action",
              "Microsoft.KeyVault/vaults/keys/unwrap/action"),
    },
    {
        .id = "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
        .name = "Key Vault Crypto Service Release User",
        .description = "Release keys." KV_ONLY_RBAC,
        .data_actions = L("Microsoft.KeyVault/vaults/keys/release/action"),
    },
    {
        .id = "12338af0-0e69-4776-bea7-57ae8d297424",
        .name = "Key Vault Crypto User",
        .description = "Perform cryptographic operations using keys." KV_ONLY_RBAC,
        .data_actions =
            L("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/update/action",
              "Microsoft.KeyVault/vaults/keys/backup/action",
              "Microsoft.KeyVault/vaults/keys/encrypt/action",
              "Microsoft.KeyVault/vaults/keys/decrypt/action",
              "Microsoft.KeyVault/vaults/keys/wrap/action",
              "Microsoft.KeyVault/vaults/keys/unwrap/action",
              "Microsoft.KeyVault/vaults/keys/sign/action",
              "Microsoft.KeyVault/vaults/keys/verify/action"),
    },
    {
        /* Azure lists the Microsoft.Resources deployments wildcard twice; kept as published. */
        .id = "8b54135c-b56d-4d72-a534-26097cfdc8d8",
        .name = "Key Vault Data Access Administrator",
        .description = "Manage access to Azure Key Vault by adding or removing role assignments "
                       "for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault "
                       "Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto "
                       "User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets "
                       "User roles. Includes an ABAC condition to constrain role assignments.",
        .actions =
            L("Microsoft.Authorization/roleAssignments/write",
              "Microsoft.Authorization/roleAssignments/delete", "Microsoft.Authorization/*/read",
              "Microsoft.Resources/deployments/*",
              "Microsoft.Resources/subscriptions/resourceGroups/read",
              "Microsoft.Resources/subscriptions/read",
              "Microsoft.Management/managementGroups/read", "Microsoft.Resources/deployments/*",
              "Microsoft.Support/*", "Microsoft.KeyVault/vaults/*/read"),
        /* The GUIDs of Azure's condition, in its order: Administrator, Certificates Officer,
         * Crypto Officer, Crypto Service Encryption User, Crypto User, Reader, Secrets Officer,
         * Secrets User. */
        .delegable =
            L("00482a5a-887f-4fb3-b363-3b7fe8e74483", "a4417e6f-fecd-4de8-b567-7b0420556985",
              "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "e147488a-f6f5-4113-8e2d-b22465e65bf6",
              "12338af0-0e69-4776-bea7-57ae8d297424", "21090545-7ca7-4776-b22c-e363652d74d2",
              "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "4633458b-17de-408a-b874-0445c86b69e6"),
    },
    {
        .id = "21090545-7ca7-4776-b22c-e363652d74d2",
        .name = "Key Vault Reader",
        .description =
            "Read metadata of key vaults and its certificates, keys, and secrets. Cannot "
            "read sensitive values such as secret contents or key "
            "material." KV_ONLY_RBAC,
        .actions = L(KV_READ_ACTIONS),
        .data_actions = L("Microsoft.KeyVault/vaults/*/read",
                          "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    },
    {
        .id = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        .name = "Key Vault Secrets Officer",
        .description = "Perform any action on the secrets of a key vault, except manage "
                       "permissions." KV_ONLY_RBAC,
        .actions = L(KV_READ_ACTIONS),
        .data_actions = L("Microsoft.KeyVault/vaults/secrets/*"),
    },
    {
        .id = "4633458b-17de-408a-b874-0445c86b69e6",
        .name = "Key Vault Secrets User",
        .description = "Read secret contents." KV_ONLY_RBAC,
        .data_actions = L("Microsoft.KeyVault/vaults/secrets/getSecret/action",
                          "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    },
    /* integration.md */
    {
        .id = "1e241071-0855-49ea-94dc-649edcd759de",
        .name = "EventGrid Contributor",
        .description = "Lets you manage EventGrid operations.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.EventGrid/*",
              "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
              "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"),
    },
    {
        .id = "d5a91429-5739-47e2-a06b-3470a27159e7",
        .name = "EventGrid Data Sender",
        .description = "Allows send access to event grid events.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.EventGrid/topics/read",
              "Microsoft.EventGrid/domains/read", "Microsoft.EventGrid/partnerNamespaces/read",
              "Microsoft.Resources/subscriptions/resourceGroups/read",
              "Microsoft.EventGrid/namespaces/read"),
        .data_actions = L("Microsoft.EventGrid/events/send/action"),
    },
    {
        .id = "428e0ff0-5e57-4d9c-a221-2c70d0e0a443",
        .name = "EventGrid EventSubscription Contributor",
        .description = "Lets you manage EventGrid event subscription operations.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.EventGrid/eventSubscriptions/*",
              "Microsoft.EventGrid/topicTypes/eventSubscriptions/read",
              "Microsoft.EventGrid/locations/eventSubscriptions/read",
              "Microsoft.EventGrid/locations/topicTypes/eventSubscriptions/read",
              "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
              "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"),
    },
    {
        .id = "2414bbcf-6497-4faf-8c65-045460748405",
        .name = "EventGrid EventSubscription Reader",
        .description = "Lets you read EventGrid event subscriptions.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.EventGrid/eventSubscriptions/read",
              "Microsoft.EventGrid/topicTypes/eventSubscriptions/read",
              "Microsoft.EventGrid/locations/eventSubscriptions/read",
              "Microsoft.EventGrid/locations/topicTypes/eventSubscriptions/read",
              "Microsoft.Resources/subscriptions/resourceGroups/read"),
    },
    {
        .id = "87a39d53-fc1b-424a-814c-f7e04687dc9e",
        .name = "Logic App Contributor",
        .description = "Lets you manage logic app, but not access to them.",
        .actions =
            L("Microsoft.Authorization/*/read",
              "Microsoft.ClassicStorage/storageAccounts/listKeys/action",
              "Microsoft.ClassicStorage/storageAccounts/read", "Microsoft.Insights/alertRules/*",
              "Microsoft.Insights/metricAlerts/*", "Microsoft.Insights/diagnosticSettings/*",
              "Microsoft.Insights/logdefinitions/*", "Microsoft.Insights/metricDefinitions/*",
              "Microsoft.Logic/*", "Microsoft.Resources/deployments/*",
              "Microsoft.Resources/subscriptions/operationresults/read",
              "Microsoft.Resources/subscriptions/resourceGroups/read",
              "Microsoft.Storage/storageAccounts/listkeys/action",
              "Microsoft.Storage/storageAccounts/read", "Microsoft.Support/*",
              "Microsoft.Web/connectionGateways/*", "Microsoft.Web/connections/*",
              "Microsoft.Web/customApis/*", "Microsoft.Web/serverFarms/join/action",
              "Microsoft.Web/serverFarms/read", "Microsoft.Web/sites/functions/listSecrets/action"),
    },
    {
        .id = "515c2055-d9d4-4321-b1b9-bd0c9a0f79fe",
        .name = "Logic App Operator",
        .description = "Lets you read, enable and disable logic app.",
        .actions =
            L("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*/read",
              "Microsoft.Insights/metricAlerts/*/read",
              "Microsoft.Insights/diagnosticSettings/*/read",
              "Microsoft.Insights/metricDefinitions/*/read", "Microsoft.Logic/*/read",
              "Microsoft.Logic/workflows/disable/action", "Microsoft.Logic/workflows/enable/action",
              "Microsoft.Logic/workflows/validate/action",
              "Microsoft.Resources/deployments/operations/read",
              "Microsoft.Resources/subscriptions/operationresults/read",
              "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
              "Microsoft.Web/connectionGateways/*/read", "Microsoft.Web/connections/*/read",
              "Microsoft.Web/customApis/*/read", "Microsoft.Web/serverFarms/read"),
    },
    /* storage.md */
    {
        .id = "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        .name = "Storage Blob Data Contributor",
        .description = "Allows for read, write and delete access to Azure Storage blob containers "
                       "and data",
        .actions =
            L("Microsoft.Storage/storageAccounts/blobServices/containers/delete",
              "Microsoft.Storage/storageAccounts/blobServices/containers/read",
              "Microsoft.Storage/storageAccounts/blobServices/containers/write",
              "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        .data_actions =
            L("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
              "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
              "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
              "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
              "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"),
    },
    {
        .id = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        .name = "Storage Blob Data Owner",
        .description = "Allows for full access to Azure Storage blob containers and data, "
                       "including assigning POSIX access control.",
        .actions =
            L("Microsoft.Storage/storageAccounts/blobServices/containers/*",
              "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        .data_actions = L("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"),
    },
    {
        .id = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        .name = "Storage Blob Data Reader",
        .description = "Allows for read access to Azure Storage blob containers and data",
        .actions =
            L("Microsoft.Storage/storageAccounts/blobServices/containers/read",
              "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        .data_actions = L("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"),
    },
    {
        .id = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
        .name = "Storage Blob Delegator",
        .description = "Allows for generation of a user delegation key which can be used to sign "
                       "SAS tokens",
        .actions =
            L("Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
    },
    /* web-and-mobile.md */
    {
        .id = "de139f84-1756-47ae-9be6-808fbbe84772",
        .name = "Website Contributor",
        .description = "Lets you manage websites (not web plans), but not access to them.",
        .actions = L(
            "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
            "Microsoft.Insights/components/*", "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
            "Microsoft.Web/certificates/*", "Microsoft.Web/listSitesAssignedToHostName/read",
            "Microsoft.Web/serverFarms/join/action", "Microsoft.Web/serverFarms/read",
            "Microsoft.Web/sites/*"),
    },
    /* identity.md */
    {
        .id = "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        .name = "Managed Identity Contributor",
        .description = "Create, Read, Update, and Delete User Assigned Identity",
        .actions = L(
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action",
            "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*", "Microsoft.Support/*"),
    },
    {
        .id = "f1a07417-d97a-45cb-824c-7a7467783830",
        .name = "Managed Identity Operator",
        .description = "Read and Assign User Assigned Identity",
        .actions = L("Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                     "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                     "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
                     "Microsoft.Resources/subscriptions/resourceGroups/read",
                     "Microsoft.Resources/deployments/*", "Microsoft.Support/*"),
    },
};

const size_t rp__rbac_nbuiltins = sizeof(rp__rbac_builtins) / sizeof(rp__rbac_builtins[0]);
