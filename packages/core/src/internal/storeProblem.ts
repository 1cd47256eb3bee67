/**
 * The one error the trust store's format readers and writers throw. It says
 * what is wrong with the content and how to fix it, but not which file: the
 * caller (`TrustStore.ts`) knows the path and turns it into a
 * `TrustStoreError` naming the file. It never carries a password.
 */
export class StoreProblem extends Error {
  override readonly name = "StoreProblem"
  readonly fix: string

  constructor(detail: string, fix: string, options?: { readonly cause?: unknown }) {
    super(detail, options)
    this.fix = fix
  }
}

/** The advice for a keystore whose integrity check failed. */
export const wrongPasswordFix =
  "check trustStorePassword (keytool's default is changeit); if it is right, the file is " +
  "damaged: copy it again from its source"
