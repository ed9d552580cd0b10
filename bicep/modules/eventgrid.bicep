// Event Grid system topic on the storage account, and the subscription that delivers BlobCreated
// and BlobDeleted under the upload container to the Event Grid-triggered function on_blob_event.
//
// Two-step deployment: an AzureFunction endpoint is validated against the deployed function, so
// the subscription can only be created once the code is published. `azd up` does this in its
// postdeploy hook (bicep/hooks/postdeploy.sh deploys this module with deployEventSubscription=true);
// by hand: deployEventSubscription=false, publish the code, deploy again with true (bicep/README.md). The topic's system-assigned identity writes undeliverable events to the
// dead-letter container; roles.bicep grants it Storage Blob Data Contributor on that container only.

param name string
param location string
param tags object = {}

param storageAccountId string
param functionAppId string
param functionName string = 'on_blob_event'
param uploadContainerName string = 'uploads'
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Create the event subscription (only after the function code is deployed).')
param deployEventSubscription bool = false

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 10

@description('Minutes Event Grid keeps retrying an event before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource blobEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscription) {
  parent: topic
  // Letters, digits and hyphens only (3-64): the function's underscores become hyphens.
  name: 'uploads-to-${replace(functionName, '_', '-')}'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
        'Microsoft.Storage.BlobDeleted'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${uploadContainerName}/blobs/'
      isSubjectCaseSensitive: false
      enableAdvancedFilteringOnArrays: true
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output topicId string = topic.id
output topicName string = topic.name
output topicPrincipalId string = topic.identity.principalId
