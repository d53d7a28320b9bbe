// Evaluates iam-operator's own AWS policy with @cloud-copilot/iam-simulate:
// every call an operator made in the e2e run must be allowed by the policy
// rendered for that operator's flags, and every call in forbidden-calls.json
// must be denied. Exits non-zero otherwise, naming each offending call.
//
// Usage: node prove.mjs --deps <dir with node_modules> --operator <binary>
//                      --run <dir of calls-*.jsonl and launch-*.json>
//                      --forbidden <forbidden-calls.json>

import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]])
    return pairs
  }, [])
)
for (const required of ['deps', 'operator', 'run', 'forbidden']) {
  if (!args[required]) throw new Error(`--${required} is required`)
}

// The simulator is installed under .cache, not beside this file.
const require = createRequire(resolve(args.deps, 'package.json'))
const { runSimulation } = require('@cloud-copilot/iam-simulate')

const OPERATOR_KEY_PREFIX = 'AKIAOPERATOR'

function partitionOf(region) {
  if (region.startsWith('cn-')) return 'aws-cn'
  if (region.startsWith('us-gov-')) return 'aws-us-gov'
  return 'aws'
}

/** The policy `iam-operator --print-aws-policy` renders for these flags. */
const rendered = new Map()
function renderPolicy({ clusterName, region, accountId, args: flags }) {
  const key = JSON.stringify([clusterName, region, accountId, flags])
  if (!rendered.has(key)) {
    const argv = ['--print-aws-policy', ...flags]
    if (!flags.includes('--aws-account-id')) argv.push('--aws-account-id', accountId)
    const env = { ...process.env, AWS_REGION: region, IAM_OPERATOR_CLUSTER_NAME: clusterName }
    // Flags given to a launch win over the environment, as for the operator.
    for (const name of Object.keys(env)) {
      if (name.startsWith('IAM_OPERATOR_') && name !== 'IAM_OPERATOR_CLUSTER_NAME') delete env[name]
    }
    const text = execFileSync(args.operator, argv, { env, encoding: 'utf8' })
    rendered.set(key, JSON.parse(text))
  }
  return rendered.get(key)
}

/** The simulator's request context for one call of the emulator's log. */
function contextOf(call) {
  const context = {}
  for (const [k, v] of Object.entries(call.requestTags ?? {})) context[`aws:RequestTag/${k}`] = v
  for (const [k, v] of Object.entries(call.resourceTags ?? {})) context[`aws:ResourceTag/${k}`] = v
  if (call.tagKeys) context['aws:TagKeys'] = call.tagKeys
  if (call.permissionsBoundary) context['iam:PermissionsBoundary'] = call.permissionsBoundary
  if (call.passedToService) context['iam:PassedToService'] = call.passedToService
  return context
}

async function decide(policy, accountId, action, resource, context) {
  const response = await runSimulation(
    {
      request: {
        principal: `arn:${policy.partition}:iam::${accountId}:role/iam-operator`,
        action,
        resource: { resource, accountId },
        contextVariables: context
      },
      identityPolicies: [{ name: 'iam-operator', policy: policy.document }],
      serviceControlPolicies: [],
      resourceControlPolicies: []
    },
    { simulationMode: 'Strict' }
  )
  if (response.resultType === 'error') {
    return { decision: 'Error', detail: JSON.stringify(response.errors) }
  }
  // A key the simulator drops as not applying to the action would make a
  // condition silently fail or pass: report it rather than trust the result.
  const ignored =
    response.resultType === 'single'
      ? (response.result.ignoredContextKeys ?? [])
      : response.results.flatMap((r) => r.ignoredContextKeys ?? [])
  return { decision: response.overallResult, ignored }
}

function describe(entry) {
  const context = Object.keys(entry.context).length ? ` ${JSON.stringify(entry.context)}` : ''
  return `${entry.action} on ${entry.resource}${context}`
}

// -- the run's calls ---------------------------------------------------------

const files = readdirSync(args.run)
const launches = new Map()
for (const name of files.filter((f) => f.startsWith('launch-') && f.endsWith('.json'))) {
  const launch = JSON.parse(readFileSync(join(args.run, name), 'utf8'))
  launches.set(launch.accessKeyId, launch)
}
const calls = []
for (const name of files.filter((f) => f.startsWith('calls-') && f.endsWith('.jsonl'))) {
  for (const line of readFileSync(join(args.run, name), 'utf8').split('\n')) {
    if (line.trim()) calls.push(JSON.parse(line))
  }
}

const problems = []
const operatorCalls = calls.filter((c) => c.accessKeyId?.startsWith(OPERATOR_KEY_PREFIX))
if (launches.size === 0 || operatorCalls.length === 0) {
  problems.push(
    `no operator calls to judge in ${args.run} (${launches.size} launches, ${calls.length} calls): ` +
      'run the e2e tests with IAM_OPERATOR_POLICY_PROOF_DIR set'
  )
}

// One evaluation per distinct request: a resync repeats the same reads.
const distinct = new Map()
for (const call of operatorCalls) {
  const launch = launches.get(call.accessKeyId)
  if (!launch) {
    problems.push(`call #${call.seq} ${call.action} by ${call.accessKeyId}: no launch record`)
    continue
  }
  if (call.describeError) {
    problems.push(`call #${call.seq} ${call.action}: the emulator could not describe it: ${call.describeError}`)
    continue
  }
  const requests = [{ action: call.action, resource: call.resource, context: contextOf(call) }]
  for (const implied of call.implied ?? []) {
    requests.push({ action: implied.action, resource: implied.resource, context: contextOf(implied) })
  }
  for (const request of requests) {
    if (!request.resource) {
      problems.push(`call #${call.seq} ${request.action}: no resource in the call log`)
      continue
    }
    const key = JSON.stringify([launch.accessKeyId, request])
    const seen = distinct.get(key)
    if (seen) seen.count += 1
    else distinct.set(key, { ...request, launch, accountId: call.accountId, count: 1 })
  }
}

let allowedCalls = 0
for (const entry of distinct.values()) {
  const document = renderPolicy(entry.launch)
  const policy = { document, partition: partitionOf(entry.launch.region) }
  const { decision, ignored, detail } = await decide(policy, entry.accountId, entry.action, entry.resource, entry.context)
  if (decision === 'Allowed' && ignored.length === 0) {
    allowedCalls += entry.count
  } else {
    problems.push(
      `operator call denied (${decision}${ignored?.length ? `, ignored keys ${ignored}` : ''}${detail ? `: ${detail}` : ''}): ` +
        `${describe(entry)} [launch ${entry.launch.accessKeyId} ${JSON.stringify(entry.launch.args)}]`
    )
  }
}

// -- the calls it must deny --------------------------------------------------

const forbidden = JSON.parse(readFileSync(args.forbidden, 'utf8'))
let deniedForbidden = 0
let judgedForbidden = 0
const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (_, name) => vars[name] ?? `{${name}}`)
for (const setup of forbidden.setups) {
  const vars = { ...setup.vars, partition: partitionOf(setup.vars.region) }
  const document = renderPolicy({
    clusterName: vars.cluster,
    region: vars.region,
    accountId: vars.account,
    args: setup.flags
  })
  const policy = { document, partition: vars.partition }
  for (const call of forbidden.calls) {
    if (call.setups && !call.setups.includes(setup.name)) continue
    const context = Object.fromEntries(
      Object.entries(call.context ?? {}).map(([k, v]) => [
        fill(k, vars),
        Array.isArray(v) ? v.map((x) => fill(x, vars)) : fill(v, vars)
      ])
    )
    const resource = fill(call.resource, vars)
    judgedForbidden += 1
    const { decision, ignored, detail } = await decide(policy, vars.account, call.action, resource, context)
    if (decision !== 'Error' && decision !== 'Allowed' && ignored.length === 0) {
      deniedForbidden += 1
    } else {
      problems.push(
        `forbidden call not denied (${decision}${ignored?.length ? `, ignored keys ${ignored}` : ''}${detail ? `: ${detail}` : ''}) ` +
          `[${setup.name}] ${call.name}: ${call.action} on ${resource} ${JSON.stringify(context)}`
      )
    }
  }
}

console.log(
  `policy proof: ${operatorCalls.length} operator calls (${distinct.size} distinct requests, ` +
    `${launches.size} launches): ${allowedCalls} allowed; ` +
    `${deniedForbidden} of ${judgedForbidden} forbidden calls denied (${forbidden.calls.length} calls, ${forbidden.setups.length} setups)`
)
for (const problem of problems) console.error(`FAIL ${problem}`)
process.exit(problems.length ? 1 : 0)
