/**
 * @spoc-mail/example-json-file-source: an example config source that reads
 * settings from a JSON file. docs/writing-a-config-source.md builds it.
 */
export * as JsonFileSource from "./JsonFileSource.ts"
