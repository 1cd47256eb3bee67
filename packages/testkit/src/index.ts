/**
 * @spoc-mail/testkit: test parts for spoc-mail and its plugins: the fixture
 * PKI and config files, a real SMTP server that captures messages, a
 * scripted SMTP server for byte-exact and hostile replies, and a stub of the
 * system resolver that names servers without DNS. The contract suites, which
 * need vitest, are in `@spoc-mail/testkit/contracts`.
 */
export * from "./Fixtures.ts"
export { type LookupAnswer, type LookupStub, stubLookup } from "./LookupStub.ts"
export * from "./SmtpTestServer.ts"
export {
  type Bytes,
  type ImplicitTlsOptions,
  type ScriptedSmtpServer,
  ScriptedSmtpServerError,
  type ScriptedSmtpServerOptions,
  type ScriptTlsOptions,
  startScriptedSmtpServer,
  type Step,
  type TranscriptEntry,
} from "./ScriptedSmtpServer.ts"
/** Script steps for `startScriptedSmtpServer`: `Script.expect(/^EHLO/i, Script.lines(...))`. */
export * as Script from "./ScriptedSmtpServer.ts"
