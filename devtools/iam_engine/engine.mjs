// The policy engine's process: one JSON request per line on stdin, one JSON answer per line on stdout.
// Requests are decided one after another, in the order they arrive; each answer carries its request's id,
// so the Python client (devtools/iam_engine/engine.py) may have several in flight from several threads.
// This file only translates: every decision is @cloud-copilot/iam-simulate's (the version package.json pins).
import { createInterface } from 'node:readline'
import { createRequire } from 'node:module'
import { join } from 'node:path'

// The package as installed under the root the client names (argv[2]: the repository, whose package.json
// pins it), not wherever node's own lookup from this file would find one.
const require = createRequire(join(process.argv[2], 'package.json'))
const { getDenialReasons, getGrantReasons, runSimulation } = require('@cloud-copilot/iam-simulate')

function write(message) {
  process.stdout.write(JSON.stringify(message) + '\n')
}

async function decide(simulation) {
  const response = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (response.resultType === 'error') {
    return { error: response.errors.message, details: response.errors }
  }
  const results = response.resultType === 'single' ? [response.result] : response.results
  const analyses = results.map((result) => result.analysis)
  return {
    result: response.overallResult,
    identity: analyses.map((a) => a.identityAnalysis?.result ?? null)[0] ?? null,
    resource: analyses.map((a) => a.resourceAnalysis?.result ?? null)[0] ?? null,
    sameAccount: analyses[0]?.sameAccount ?? null,
    grants: analyses.flatMap((a) => (a.result === 'Allowed' ? getGrantReasons(a) : [])),
    denials: analyses.flatMap((a) => (a.result === 'Allowed' ? [] : getDenialReasons(a))),
    ignoredContextKeys: results.flatMap((result) => result.ignoredContextKeys ?? []),
  }
}

write({ ready: true })
let queue = Promise.resolve()
createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
  queue = queue.then(async () => {
    let id = null
    try {
      const request = JSON.parse(line)
      id = request.id
      write({ id, ...(await decide(request.simulation)) })
    } catch (error) {
      write({ id, error: String(error?.stack ?? error) })
    }
  })
})
