/**
 * @spoc-mail/testkit: test parts for spoc-mail and its plugins.
 */
export * from "./ConfigSourceContract.ts"
export * from "./Fixtures.ts"
export * from "./SmtpTestServer.ts"
