/**
 * llamactl's metrics, per instance and for the process, fed by events from the HTTP layer and
 * the instances; rendered at /metrics in the Prometheus text format.
 */
import { readdirSync } from 'node:fs'
import type { Instance } from '../instances/instance'
import { STATUSES } from '../instances/options'
import { BUILD } from '../version'
import { RecentRequests } from './requests'
import { RecentActivity } from './recent'
import { Registry } from './registry'
import type { Usage } from './usage'

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const WAIT_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/** The fixed set of route labels: a client can never add one. */
export function routeLabel(path: string): string {
  switch (path) {
    case '/v1/chat/completions':
      return 'chat_completions'
    case '/v1/completions':
      return 'completions'
    case '/v1/embeddings':
      return 'embeddings'
    case '/v1/rerank':
    case '/v1/reranking':
      return 'rerank'
    case '/v1/responses':
      return 'responses'
    case '/v1/messages':
      return 'messages'
    default:
      return 'other'
  }
}

export type InstanceEvent = 'start' | 'restart' | 'crash' | 'eviction' | 'idle_stop'

export class Metrics {
  readonly registry = new Registry()
  /** The last ten minutes per instance, for the page. */
  readonly recent = new RecentActivity()
  /** The last requests, one by one (the Activity view, GET /api/v1/activity). */
  readonly requestLog = new RecentRequests()
  private started = Date.now()
  readonly requests = this.registry.counter('llamactl_requests_total', 'Requests forwarded to an instance, by route and status', ['instance', 'route', 'status'])
  readonly duration = this.registry.histogram('llamactl_request_duration_seconds', 'Time from the request to the end of the response', ['instance', 'route'], LATENCY_BUCKETS)
  readonly ttfb = this.registry.histogram('llamactl_time_to_first_byte_seconds', 'Time from the request to the backend\'s response headers', ['instance', 'route'], LATENCY_BUCKETS)
  readonly inFlight = this.registry.gauge('llamactl_requests_in_flight', 'Requests being forwarded now', ['instance'])
  readonly promptTokens = this.registry.counter('llamactl_prompt_tokens_total', 'Prompt tokens, from the backend\'s usage', ['instance'])
  readonly completionTokens = this.registry.counter('llamactl_completion_tokens_total', 'Completion tokens, from the backend\'s usage', ['instance'])
  readonly events = this.registry.counter('llamactl_instance_events_total', 'Starts, restarts, crashes, evictions and idle stops', ['instance', 'event'])
  readonly onDemandWait = this.registry.histogram('llamactl_on_demand_start_wait_seconds', 'How long requests waited for an on-demand start', ['instance'], WAIT_BUCKETS)
  readonly queueLength = this.registry.gauge('llamactl_queue_length', 'Requests waiting in an instance\'s queue now (max_concurrent_requests reached)', ['instance'])
  readonly queueWait = this.registry.histogram('llamactl_queue_wait_seconds', 'How long requests waited in the queue before being forwarded', ['instance'], WAIT_BUCKETS)
  readonly queueRefused = this.registry.counter('llamactl_queue_refused_total', 'Requests answered 429: the queue was full, or they waited queue_timeout', ['instance', 'reason'])
  readonly status = this.registry.gauge('llamactl_instance_status', 'Current status (1 for the status it has)', ['instance', 'status'])
  readonly idleFor = this.registry.gauge('llamactl_instance_seconds_since_last_request', 'Seconds since the last request ended', ['instance'])
  /** Fed by the /v1 routes' BodyBudget. */
  readonly bufferedBodyBytes = this.registry.gauge('llamactl_buffered_request_body_bytes', 'Bytes of /v1 request bodies held in memory now (server.max_buffered_body_size bounds it)')
  private readonly rss = this.registry.gauge('llamactl_process_resident_memory_bytes', 'llamactl\'s resident memory')
  private readonly fds = this.registry.gauge('llamactl_process_open_fds', 'llamactl\'s open file descriptors')
  private readonly uptime = this.registry.gauge('llamactl_process_uptime_seconds', 'Seconds since llamactl started')
  private readonly build = this.registry.gauge('llamactl_build_info', 'Build of llamactl', ['version', 'commit'])

  constructor(instances: () => Instance[]) {
    this.inFlight.collect = () => instances().map((i) => [[i.name], i.inflight])
    this.queueLength.collect = () => instances().map((i) => [[i.name], i.queued])
    this.status.collect = () => instances().flatMap((i) => STATUSES.map((s) => [[i.name, s], i.status === s ? 1 : 0] as [string[], number]))
    this.idleFor.collect = () => instances().filter((i) => i.lastUsed > 0).map((i) => [[i.name], (Date.now() - i.lastUsed) / 1000])
    this.rss.collect = () => [[[], process.memoryUsage.rss()]]
    this.fds.collect = () => [[[], openFds()]]
    this.uptime.collect = () => [[[], (Date.now() - this.started) / 1000]]
    this.build.collect = () => [[[BUILD.version, BUILD.commit], 1]]
  }

  /** One forwarded request has ended. */
  request(instance: string, route: string, status: number, startedAt: number, headersAt: number, usage: Usage | null, firstTokenAt = 0) {
    const now = performance.now()
    this.requestLog.record(instance, route, status, startedAt, headersAt, firstTokenAt, usage, now)
    this.requests.inc([instance, route, String(status)])
    this.duration.observe([instance, route], (now - startedAt) / 1000)
    if (headersAt) this.ttfb.observe([instance, route], (headersAt - startedAt) / 1000)
    if (usage) {
      this.promptTokens.inc([instance], usage.prompt)
      this.completionTokens.inc([instance], usage.completion)
    }
    this.recent.record(instance, status, usage?.completion ?? 0, usage?.perSecond)
  }

  event(instance: string, event: InstanceEvent) {
    this.events.inc([instance, event])
  }

  forgetInstance(name: string) {
    this.registry.forget('instance', name)
    this.recent.forget(name)
    this.requestLog.forget(name)
  }

  render(): string {
    return this.registry.render()
  }
}

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length
  } catch {
    return -1
  }
}
