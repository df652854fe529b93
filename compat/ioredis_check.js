// Common commands with ioredis (npm ioredis), one check at a time, against one target.
//
// compat/scripts.py runs it with node, NODE_PATH at the compatibility cache's node_modules and the
// target in the environment: COMPAT_HOST, COMPAT_PORT, COMPAT_PASSWORD, COMPAT_TLS (1: TLS, verified
// against SSL_CERT_FILE), COMPAT_CLUSTER (1: Redis.Cluster). Each check's outcome goes to
// COMPAT_RESULTS_FILE as a JSON line, in the shape of redispy_plugin's records. The checks are
// compat/glide_check.py's, under the same names, plus quit.
"use strict";
const fs = require("fs");
const Redis = require("ioredis");

const HOST = process.env.COMPAT_HOST;
const PORT = Number(process.env.COMPAT_PORT);
const PASSWORD = process.env.COMPAT_PASSWORD;
const TLS = process.env.COMPAT_TLS === "1";
const CLUSTER = process.env.COMPAT_CLUSTER === "1";
const RESULTS = process.env.COMPAT_RESULTS_FILE;
const TIMEOUT_MS = 5000;

class Skip extends Error {}

function options(password, name) {
  const o = {
    password,
    connectionName: name,
    commandTimeout: TIMEOUT_MS,
    connectTimeout: TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null, // a refused connection is a result, not something to retry
    lazyConnect: false,
  };
  if (TLS) o.tls = { ca: fs.readFileSync(process.env.SSL_CERT_FILE) };
  return o;
}

async function connect(password = PASSWORD, name = undefined) {
  let c;
  if (CLUSTER) {
    c = new Redis.Cluster([{ host: HOST, port: PORT }], {
      redisOptions: options(password, name),
      clusterRetryStrategy: () => null,
      // Announced host names are used as they are (the certificate names localhost).
      dnsLookup: (address, callback) => callback(null, address),
      slotsRefreshTimeout: TIMEOUT_MS,
    });
  } else {
    c = new Redis(PORT, HOST, options(password, name));
  }
  c.on("error", () => {}); // errors surface through the commands' promises
  await new Promise((resolve, reject) => {
    c.once("ready", resolve);
    c.once("error", reject);
    c.once("end", () => reject(new Error("connection ended before ready")));
  });
  return c;
}

function expect(value, wanted) {
  const a = JSON.stringify(value);
  const b = JSON.stringify(wanted);
  if (a !== b) throw new Error(`got ${a}, expected ${b}`);
}

const checks = {
  async ping(c) {
    expect(await c.ping(), "PONG");
  },
  async set_get_ttl(c) {
    expect(await c.set("i:str", "v1", "EX", 60), "OK");
    expect(await c.get("i:str"), "v1");
    const ttl = await c.ttl("i:str");
    if (!(ttl > 0 && ttl <= 60)) throw new Error(`ttl ${ttl}`);
  },
  async incr(c) {
    await c.del("i:ctr");
    expect(await c.incr("i:ctr"), 1);
    expect(await c.incrby("i:ctr", 41), 42);
  },
  async hash(c) {
    await c.del("i:h");
    expect(await c.hset("i:h", { a: "1", b: "2" }), 2);
    expect(await c.hgetall("i:h"), { a: "1", b: "2" });
  },
  async list(c) {
    await c.del("i:l");
    expect(await c.rpush("i:l", "a", "b", "c"), 3);
    expect(await c.lrange("i:l", 0, -1), ["a", "b", "c"]);
  },
  async set(c) {
    await c.del("i:s");
    expect(await c.sadd("i:s", "a", "b"), 2);
    expect((await c.smembers("i:s")).sort(), ["a", "b"]);
  },
  async sorted_set(c) {
    await c.del("i:z");
    expect(await c.zadd("i:z", 1, "a", 2, "b"), 2);
    expect(await c.zrange("i:z", 0, -1, "WITHSCORES"), ["a", "1", "b", "2"]);
  },
  async mset_mget_same_slot(c) {
    expect(await c.mset("{i}a", "1", "{i}b", "2"), "OK");
    expect(await c.mget("{i}a", "{i}b"), ["1", "2"]);
  },
  async mget_across_slots(c) {
    expect(await c.mset("i:x1", "1", "i:x2", "2", "i:x3", "3"), "OK");
    expect(await c.mget("i:x1", "i:x2", "i:x3"), ["1", "2", "3"]);
    expect(await c.del("i:x1", "i:x2", "i:x3"), 3);
  },
  async transaction(c) {
    await c.del("{i}t2");
    const out = await c.multi().set("{i}t1", "a").incr("{i}t2").get("{i}t1").exec();
    expect(out, [[null, "OK"], [null, 1], [null, "a"]]);
  },
  async pipeline(c) {
    const p = c.pipeline();
    for (let i = 0; i < 50; i++) p.set(`{i}p${i}`, String(i));
    for (let i = 0; i < 50; i++) p.get(`{i}p${i}`);
    const out = await p.exec();
    expect(out.slice(50).map((r) => r[1]), Array.from({ length: 50 }, (_, i) => String(i)));
  },
  async lua(c) {
    const script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])";
    expect(await c.eval(script, 1, "i:lua", "hi"), "hi");
  },
  async scan(c) {
    const args = [];
    for (let i = 0; i < 20; i++) args.push(`i:scan${i}`, "1");
    for (let i = 0; i < args.length; i += 2) await c.set(args[i], args[i + 1]);
    const nodes = CLUSTER ? c.nodes("master") : [c];
    const found = new Set();
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", "i:scan*");
        keys.forEach((k) => found.add(k));
        cursor = next;
      } while (cursor !== "0");
    }
    expect(found.size, 20);
  },
  async expire_persist(c) {
    await c.set("i:e", "1");
    expect(await c.expire("i:e", 100), 1);
    expect(await c.persist("i:e"), 1);
    expect(await c.ttl("i:e"), -1);
  },
  async streams(c) {
    await c.del("i:st");
    const id = await c.xadd("i:st", "*", "f", "v");
    const out = await c.xread("STREAMS", "i:st", "0-0");
    expect(out, [["i:st", [[id, ["f", "v"]]]]]);
  },
  async blocking_pop(c) {
    const other = await connect();
    try {
      await c.del("i:bl");
      const waiter = c.blpop("i:bl", 3);
      await new Promise((r) => setTimeout(r, 200)); // let BLPOP block first: the push must wake it
      await other.rpush("i:bl", "x");
      expect(await waiter, ["i:bl", "x"]);
    } finally {
      other.disconnect();
    }
  },
  async pubsub(c) {
    const sub = await connect();
    try {
      const got = new Promise((resolve) => sub.on("message", (ch, msg) => resolve([ch, msg])));
      await sub.subscribe("i:chan");
      const receivers = await c.publish("i:chan", "hello");
      if (!CLUSTER) expect(receivers, 1); // a cluster node counts only its own subscribers
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no message in 5 s")), 5000));
      expect(await Promise.race([got, timeout]), ["i:chan", "hello"]);
    } finally {
      sub.disconnect();
    }
  },
  async info(c) {
    const node = CLUSTER ? c.nodes("master")[0] : c;
    const text = await node.info("server");
    if (!text.includes("redis_version:")) throw new Error(text.slice(0, 200));
    const cluster = await node.info("cluster");
    expect(cluster.includes("cluster_enabled:1"), CLUSTER);
  },
  async client_name(c) {
    const named = await connect(PASSWORD, "compat-ioredis");
    try {
      const node = CLUSTER ? named.nodes("master")[0] : named;
      expect(await node.client("GETNAME"), "compat-ioredis");
    } finally {
      named.disconnect();
    }
  },
  async wrong_password(c) {
    let bad;
    try {
      bad = await connect("not-the-key");
    } catch (e) {
      return; // a refusal, whatever its words (a cluster client says its slots refresh failed)
    }
    bad.disconnect();
    throw new Error("a wrong password was accepted");
  },
  async select_db1(c) {
    if (CLUSTER) throw new Skip("a cluster has db 0 only");
    expect(await c.select(1), "OK");
    expect(await c.select(0), "OK");
  },
  async config_get(c) {
    const node = CLUSTER ? c.nodes("master")[0] : c;
    const out = await node.config("GET", "maxmemory-policy");
    expect(out[0], "maxmemory-policy");
  },
  async quit(c) {
    const q = await connect();
    expect(await q.quit(), "OK");
  },
};

function record(name, outcome, message = "") {
  fs.appendFileSync(RESULTS, JSON.stringify({ nodeid: name, when: "call", outcome, message }) + "\n");
}

function within(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  let c = await connect();
  for (const [name, check] of Object.entries(checks)) {
    const start = Date.now();
    try {
      await within(check(c), 15000);
      record(name, "passed");
    } catch (e) {
      if (e instanceof Skip) {
        record(name, "skipped", e.message);
      } else {
        record(name, "failed", String(e && e.message ? `${e.name}: ${e.message}` : e).slice(0, 500));
        c.disconnect();
        c = await connect(); // a failed check may leave the connection in any state
      }
    }
    process.stderr.write(`${name}: ${(Date.now() - start) / 1000}s\n`);
  }
  c.disconnect();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
    process.exit(1);
  },
);
