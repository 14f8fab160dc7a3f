// The device's one timer queue. Every timer (a QP's retransmit and RNR timers,
// the device's own) has a fixed integer id; arming it sets a deadline. Deadlines
// span microseconds (timeout 1 = 8 µs) to hours (timeout 31), so instead of a
// fixed-granularity wheel this is an indexed binary min-heap: arm, re-arm and
// cancel are O(log n), the earliest deadline is O(1), and the storage is carved
// once at open — nothing allocates afterwards. Time is in microseconds (f64):
// the core has no clock; the host passes `now` in and asks for the next deadline.

/** Heap of timer ids ordered by deadline. */
let heapIds: usize = 0;
/** Per id: its index in the heap, or -1 when not armed. */
let heapPos: usize = 0;
/** Per id: its deadline (µs). */
let deadlines: usize = 0;
let capacity: i32 = 0;
let size: i32 = 0;

export function timersInit(cap: i32): void {
  heapIds = heap.alloc(<usize>cap << 2);
  heapPos = heap.alloc(<usize>cap << 2);
  deadlines = heap.alloc(<usize>cap << 3);
  capacity = cap;
  size = 0;
  for (let i = 0; i < cap; i++) store<i32>(heapPos + (<usize>i << 2), -1);
}

export function timersCapacity(): i32 {
  return capacity;
}

export function timersArmedCount(): i32 {
  return size;
}

@inline function idAt(i: i32): i32 {
  return load<i32>(heapIds + (<usize>i << 2));
}

@inline function deadlineOf(id: i32): f64 {
  return load<f64>(deadlines + (<usize>id << 3));
}

@inline function put(i: i32, id: i32): void {
  store<i32>(heapIds + (<usize>i << 2), id);
  store<i32>(heapPos + (<usize>id << 2), i);
}

export function timerArmed(id: i32): bool {
  return load<i32>(heapPos + (<usize>id << 2)) >= 0;
}

export function timerDeadline(id: i32): f64 {
  return timerArmed(id) ? deadlineOf(id) : Infinity;
}

/** Arms (or re-arms) timer `id` to fire at `at` µs. */
export function timerArm(id: i32, at: f64): void {
  assert(id >= 0 && id < capacity, "timer id out of range");
  let i = load<i32>(heapPos + (<usize>id << 2));
  const old = i >= 0 ? deadlineOf(id) : Infinity;
  store<f64>(deadlines + (<usize>id << 3), at);
  if (i < 0) {
    i = size++;
    put(i, id);
    siftUp(i);
  } else if (at < old) {
    siftUp(i);
  } else {
    siftDown(i);
  }
}

/** Disarms timer `id`; harmless when it is not armed. */
export function timerCancel(id: i32): void {
  const i = load<i32>(heapPos + (<usize>id << 2));
  if (i < 0) return;
  store<i32>(heapPos + (<usize>id << 2), -1);
  size--;
  if (i == size) return;
  // Move the last entry into the hole, then restore order in whichever
  // direction it is out of place (at most one of the two moves it).
  const moved = idAt(size);
  put(i, moved);
  siftUp(i);
  siftDown(load<i32>(heapPos + (<usize>moved << 2)));
}

/** The earliest deadline, or Infinity when no timer is armed. */
export function timersNext(): f64 {
  return size > 0 ? deadlineOf(idAt(0)) : Infinity;
}

/**
 * Disarms and returns the id of one timer whose deadline is <= now, earliest
 * first, or -1 when none is due. The caller loops, dispatching each id.
 */
export function timerPopDue(now: f64): i32 {
  if (size == 0) return -1;
  const id = idAt(0);
  if (deadlineOf(id) > now) return -1;
  timerCancel(id);
  return id;
}

function siftUp(i: i32): void {
  const id = idAt(i);
  const d = deadlineOf(id);
  while (i > 0) {
    const p = (i - 1) >> 1;
    const pid = idAt(p);
    if (deadlineOf(pid) <= d) break;
    put(i, pid);
    i = p;
  }
  put(i, id);
}

function siftDown(i: i32): void {
  const id = idAt(i);
  const d = deadlineOf(id);
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    let c = l;
    if (r < size && deadlineOf(idAt(r)) < deadlineOf(idAt(l))) c = r;
    if (deadlineOf(idAt(c)) >= d) break;
    put(i, idAt(c));
    i = c;
  }
  put(i, id);
}
