/**
 * IANA cipher suite names mapped to OpenSSL names, with the lowest TLS
 * version each suite works with. First hand-written version; replaced by the
 * table generated from `openssl ciphers -stdname`.
 */
import type { TlsVersion } from "../TlsVersions.ts"

export interface CipherEntry {
  readonly openssl: string
  readonly minVersion: TlsVersion
}

export const cipherTable: Readonly<Record<string, CipherEntry>> = {
  TLS_AES_256_GCM_SHA384: { openssl: "TLS_AES_256_GCM_SHA384", minVersion: "TLSv1.3" },
  TLS_CHACHA20_POLY1305_SHA256: {
    openssl: "TLS_CHACHA20_POLY1305_SHA256",
    minVersion: "TLSv1.3",
  },
  TLS_AES_128_GCM_SHA256: { openssl: "TLS_AES_128_GCM_SHA256", minVersion: "TLSv1.3" },
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: {
    openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: {
    openssl: "ECDHE-RSA-AES256-GCM-SHA384",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: {
    openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: {
    openssl: "ECDHE-RSA-AES128-GCM-SHA256",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: {
    openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: {
    openssl: "ECDHE-RSA-CHACHA20-POLY1305",
    minVersion: "TLSv1.2",
  },
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: { openssl: "ECDHE-RSA-AES256-SHA", minVersion: "TLSv1" },
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: { openssl: "ECDHE-RSA-AES128-SHA", minVersion: "TLSv1" },
}
