// The in-app PDF viewer's engine: pdf.js (pdfjs-dist). Only views/viewer.ts loads this module, with a
// dynamic import when a PDF is opened, so pdf.js never weighs on the main bundle. Its worker is a file
// Vite emits into assets/ (same origin, so the Content-Security-Policy's script-src 'self' admits it).

import { GlobalWorkerOptions, TextLayer, getDocument, type PDFDocumentProxy } from "pdfjs-dist";
import PdfWorker from "pdfjs-dist/build/pdf.worker.min.mjs?worker";
import { findPassage } from "./views/viewer";

// One worker for the tab, started the first time a PDF is opened (this module loads only then).
GlobalWorkerOptions.workerPort = new PdfWorker();

export type PdfDocument = PDFDocumentProxy;

/** Parse a PDF's bytes; no `eval` (the CSP forbids it), no XFA forms, system fonts for the standard 14. */
export function openPdf(data: ArrayBuffer): Promise<PDFDocumentProxy> {
  return getDocument({
    data: new Uint8Array(data),
    isEvalSupported: false,
    enableXfa: false,
    useSystemFonts: true,
  }).promise;
}

export interface RenderedPage {
  /** The text-layer spans that hold part of the passage, in reading order. */
  hits: HTMLElement[];
}

/**
 * Draw page `pageNumber` of `pdf` into `container` (a canvas under pdf.js's text layer), at a scale
 * that fits `width` CSS pixels, and mark the text-layer spans that hold `passage` with `viewer-hit`.
 */
export async function renderPage(
  pdf: PDFDocumentProxy,
  pageNumber: number,
  container: HTMLElement,
  width: number,
  passage: string,
): Promise<RenderedPage> {
  const page = await pdf.getPage(pageNumber);
  const natural = page.getViewport({ scale: 1 });
  const scale = Math.max(0.5, Math.min(2, width / natural.width));
  const viewport = page.getViewport({ scale });
  const ratio = window.devicePixelRatio || 1;

  const canvas = document.createElement("canvas");
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  canvas.style.width = `${Math.floor(viewport.width)}px`;
  canvas.style.height = `${Math.floor(viewport.height)}px`;
  canvas.setAttribute("aria-hidden", "true"); // the text layer above it is what assistive technology reads
  const text = document.createElement("div");
  text.className = "textLayer";
  container.replaceChildren(canvas, text);
  // pdf.js sizes the text layer from this variable (CSSOM, which the CSP allows; no inline style attribute).
  container.style.setProperty("--scale-factor", String(viewport.scale));
  container.style.width = `${Math.floor(viewport.width)}px`;
  container.style.height = `${Math.floor(viewport.height)}px`;

  await page.render({
    canvas,
    viewport,
    transform: ratio === 1 ? undefined : [ratio, 0, 0, ratio, 0, 0],
  }).promise;
  const layer = new TextLayer({ textContentSource: await page.getTextContent(), container: text, viewport });
  await layer.render();

  const items = layer.textContentItemsStr;
  const hits: HTMLElement[] = [];
  for (const index of findPassage(items, passage)) {
    const span = layer.textDivs[index];
    span.classList.add("viewer-hit");
    hits.push(span);
  }
  page.cleanup();
  return { hits };
}
