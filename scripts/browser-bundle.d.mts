/** Types of scripts/browser-bundle.mjs (the specs and the relay import it). */
export declare const BROWSER_ENTRY: string;
export declare function buildBrowserBundle(options?: { outfile?: string; minify?: boolean; entry?: string }): Promise<Uint8Array>;
