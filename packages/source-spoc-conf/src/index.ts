/**
 * @spoc-mail/source-spoc-conf: the spoc.conf config source. It reads the
 * controller's Java-properties style file faithfully (every byte of every
 * value, Windows encodings and line ends) into one layer named `spoc.conf`.
 */
export * as SpocConfReader from "./SpocConfReader.ts"
export * as SpocConfSource from "./SpocConfSource.ts"
