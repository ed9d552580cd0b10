// Sends one file straight to Blob Storage with its SAS URL. XMLHttpRequest, not fetch: only XHR
// reports upload progress.

import type { UploadTicket } from "./api";

export class UploadError extends Error {}

export function putBlob(
  ticket: UploadTicket,
  file: File,
  onProgress: (fraction: number) => void,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method || "PUT", ticket.uploadUrl);
    for (const [name, value] of Object.entries(ticket.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else if (xhr.status === 403) {
        reject(new UploadError("Storage refused the upload: the upload link has expired. Try again."));
      } else {
        reject(new UploadError(`Storage refused the upload (HTTP ${xhr.status}).`));
      }
    };
    xhr.onerror = () => reject(new UploadError("The upload failed: Blob Storage could not be reached."));
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
