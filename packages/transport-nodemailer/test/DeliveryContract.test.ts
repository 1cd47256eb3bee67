// The delivery policy through core's Mailer: every row of the failover table, secret search on.
import { deliveryContract } from "@spoc-mail/testkit/contracts"
import { NodemailerTransport } from "../src/index.ts"

deliveryContract("nodemailer", () => NodemailerTransport.make())
