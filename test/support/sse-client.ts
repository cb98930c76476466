export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Reads a Server-Sent Events response until the server closes it (or `stopAfter` says so),
 * returning every event and the number of comment lines (keepalives) seen. `request`: another
 * method and a body (a submit answered with the stream); GET by default.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  stopAfter: (events: SseEvent[]) => boolean = () => false,
  timeoutMs = 60_000,
  request: { method?: string; body?: string } = {},
): Promise<{ status: number; contentType: string | null; headers: Headers; events: SseEvent[]; comments: number }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const res = await fetch(url, { ...request, headers, signal: controller.signal });
  const events: SseEvent[] = [];
  let comments = 0;
  const answer = () => ({ status: res.status, contentType: res.headers.get('content-type'), headers: res.headers, events, comments });
  if (!res.ok || !res.body) {
    clearTimeout(timer);
    return answer();
  }
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let blank: number;
      while ((blank = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, blank);
        buffer = buffer.slice(blank + 2);
        const event: SseEvent = { data: '' };
        let isEvent = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments += 1;
          else if (line.startsWith('id: ')) ((event.id = line.slice(4)), (isEvent = true));
          else if (line.startsWith('event: ')) event.event = line.slice(7);
          else if (line.startsWith('data: ')) event.data += line.slice(6);
        }
        if (isEvent) events.push(event);
      }
      if (stopAfter(events)) {
        controller.abort();
        break;
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
  }
  return answer();
}
