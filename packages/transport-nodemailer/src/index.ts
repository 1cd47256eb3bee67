/**
 * @spoc-mail/transport-nodemailer: core's Transport on nodemailer's SMTP
 * connection, corrected where nodemailer would not fail closed.
 */
export * as NodemailerTransport from "./NodemailerTransport.ts"
