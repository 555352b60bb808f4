// The PDP benchmark's peers on the model pdp_bench dumps (model.json):
// Cedar's WASM build (preparsed policy set, statefulIsAuthorized) and casbin
// (RBAC with resource and action hierarchies, ipMatch). Prints one JSON line
// per engine with p50/p99 in microseconds.
//
//   node peers.mjs model.json [cedar_queries] [casbin_queries]
import { readFileSync } from "node:fs";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { newEnforcer, newModelFromString } from "casbin";

const model = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cedarN = Number(process.argv[3] ?? 2000);
const casbinN = Number(process.argv[4] ?? 200);

const ROLE_ACTIONS = {
  viewer: ["read"],
  commenter: ["read", "comment"],
  editor: ["read", "comment", "write", "export", "download", "print", "copy", "sign"],
  admin: ["read", "comment", "write", "export", "download", "print", "copy", "sign", "share", "manage", "delete"],
  owner: ["read", "comment", "write", "export", "download", "print", "copy", "sign", "share", "manage", "delete",
          "billing"],
};
const ACTIONS = ROLE_ACTIONS.owner;

const parentOf = (path) => {
  const parts = path.split("/");
  return parts.length > 2 ? parts.slice(0, -2).join("/") : null;
};
const chain = (path) => {
  const out = [];
  for (let p = path; p; p = parentOf(p)) out.push(p);
  return out;
};
const stats = (ns) => {
  ns.sort((a, b) => a - b);
  const at = (q) => ns[Math.floor(q * (ns.length - 1))] / 1000;
  return { p50_us: +at(0.5).toFixed(3), p99_us: +at(0.99).toFixed(3) };
};
const subjectUid = (s) => (s.startsWith("user:") ? { type: "User", id: s.slice(5) } : { type: "Group", id: s.slice(6) });

// ---- Cedar: grants are template links, ABAC policies are static policies.
function runCedar() {
  const templates = {};
  for (const role of Object.keys(ROLE_ACTIONS)) {
    templates[`user_${role}`] = `permit(principal == ?principal, action in Action::"role-${role}", resource in ?resource);`;
    templates[`group_${role}`] = `permit(principal in ?principal, action in Action::"role-${role}", resource in ?resource);`;
  }
  for (const a of ACTIONS) {
    templates[`user_deny_${a}`] = `forbid(principal == ?principal, action == Action::"${a}", resource in ?resource);`;
    templates[`group_deny_${a}`] = `forbid(principal in ?principal, action == Action::"${a}", resource in ?resource);`;
  }
  const templateLinks = model.grants.map((g, i) => {
    const kind = g.subject.startsWith("user:") ? "user" : "group";
    return {
      templateId: g.effect === "allow" ? `${kind}_${g.role}` : `${kind}_deny_${g.action}`,
      newId: `g${i}`,
      values: { "?principal": subjectUid(g.subject), "?resource": { type: "Res", id: g.resource } },
    };
  });
  const staticPolicies = {};
  model.policies.forEach((p) => {
    const res = JSON.stringify(p.target.resource);
    staticPolicies[p.id] =
      p.effect === "deny"
        ? `forbid(principal, action == Action::"export", resource in Res::${res}) unless { context.ip.isInRange(ip("10.0.0.0/8")) };`
        : `permit(principal in Group::${JSON.stringify(p.subject.groups[0])}, action == Action::"read", resource in Res::${res});`;
  });
  const t0 = Date.now();
  const parsed = cedar.preparsePolicySet("pdp", { staticPolicies, templates, templateLinks });
  if (parsed.type !== "success") throw new Error(JSON.stringify(parsed.errors).slice(0, 500));
  const loadMs = Date.now() - t0;
  const actionEntities = ACTIONS.map((a) => ({
    uid: { type: "Action", id: a },
    attrs: {},
    parents: Object.keys(ROLE_ACTIONS)
      .filter((r) => ROLE_ACTIONS[r].includes(a))
      .map((r) => ({ type: "Action", id: `role-${r}` })),
  })).concat(Object.keys(ROLE_ACTIONS).map((r) => ({ uid: { type: "Action", id: `role-${r}` }, attrs: {}, parents: [] })));
  const ns = [];
  let permits = 0;
  const qs = model.queries.slice(0, cedarN);
  const call = (q) => {
    const uidx = Number(q.user.slice(1));
    const groups = model.groups[uidx] ?? [];
    const entities = [
      { uid: { type: "User", id: q.user }, attrs: {}, parents: groups.map((g) => ({ type: "Group", id: g })) },
      ...chain(q.resource).map((p) => ({
        uid: { type: "Res", id: p },
        attrs: {},
        parents: parentOf(p) ? [{ type: "Res", id: parentOf(p) }] : [],
      })),
      ...actionEntities,
    ];
    return cedar.statefulIsAuthorized({
      principal: { type: "User", id: q.user },
      action: { type: "Action", id: q.action },
      resource: { type: "Res", id: q.resource },
      context: { ip: { __extn: { fn: "ip", arg: q.ip } } },
      preparsedPolicySetId: "pdp",
      entities,
    });
  };
  for (const q of qs.slice(0, Math.min(50, qs.length))) call(q);  // warm up
  for (const q of qs) {
    const t = process.hrtime.bigint();
    const r = call(q);
    ns.push(Number(process.hrtime.bigint() - t));
    if (r.type !== "success") throw new Error(JSON.stringify(r.errors).slice(0, 500));
    if (r.response.decision === "allow") permits++;
  }
  return { engine: "cedar-wasm " + cedar.getCedarVersion(), queries: qs.length, load_ms: loadMs,
           permit_rate: +(permits / qs.length).toFixed(4), ...stats(ns) };
}

// ---- casbin: RBAC with domains of resources and actions, deny rules, ipMatch.
async function runCasbin() {
  const m = newModelFromString(`
[request_definition]
r = sub, obj, act, ip
[policy_definition]
p = sub, obj, act, eft, cidr
[role_definition]
g = _, _
g2 = _, _
g3 = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = (p.sub == "*" || g(r.sub, p.sub)) && g2(r.obj, p.obj) && g3(r.act, p.act) && (p.cidr == "-" || !ipMatch(r.ip, p.cidr))
`);
  const e = await newEnforcer(m);
  const t0 = Date.now();
  const ps = model.grants.map((g) =>
    g.effect === "allow" ? [g.subject, g.resource, `role-${g.role}`, "allow", "-"] : [g.subject, g.resource, g.action, "deny", "-"]);
  for (const p of model.policies) {
    if (p.effect === "deny") ps.push(["*", p.target.resource, "export", "deny", "10.0.0.0/8"]);
    else ps.push([`group:${p.subject.groups[0]}`, p.target.resource, "read", "allow", "-"]);
  }
  await e.addPolicies(ps);
  const qs = model.queries.slice(0, casbinN);
  const gs = [];
  const users = new Set(qs.map((q) => q.user));
  for (const u of users) for (const g of model.groups[Number(u.slice(1))] ?? []) gs.push([`user:${u}`, `group:${g}`]);
  await e.addGroupingPolicies(gs);
  const links = new Set();
  for (const p of [...qs.map((q) => q.resource), ...model.grants.map((g) => g.resource)])
    for (const c of chain(p)) if (parentOf(c)) links.add(c + "\n" + parentOf(c));
  await e.addNamedGroupingPolicies("g2", [...links].map((l) => l.split("\n")));
  const g3 = [];
  for (const [r, acts] of Object.entries(ROLE_ACTIONS)) for (const a of acts) g3.push([a, `role-${r}`]);
  await e.addNamedGroupingPolicies("g3", g3);
  const loadMs = Date.now() - t0;
  const ns = [];
  let permits = 0;
  for (const q of qs.slice(0, Math.min(5, qs.length))) await e.enforce(`user:${q.user}`, q.resource, q.action, q.ip);
  for (const q of qs) {
    const t = process.hrtime.bigint();
    const ok = await e.enforce(`user:${q.user}`, q.resource, q.action, q.ip);
    ns.push(Number(process.hrtime.bigint() - t));
    if (ok) permits++;
  }
  return { engine: "casbin (node)", queries: qs.length, load_ms: loadMs, permit_rate: +(permits / qs.length).toFixed(4),
           ...stats(ns) };
}

console.log(JSON.stringify(runCedar()));
if (casbinN > 0) console.log(JSON.stringify(await runCasbin()));
