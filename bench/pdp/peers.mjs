// The PDP benchmark's peers on the model pdp_bench dumps (model.json), each
// modelled the way its own documentation models sharing, not as one policy
// per grant:
//
// - Cedar (WASM): a handful of role-template policies plus the 1,000 ABAC
//   policies. Grants are entity data: "subject S holds role R on resource X"
//   makes S a member (parent) of Access::"X#R"; a denial of action A makes S
//   a member of Deny::"X#A"; users are members of their groups. The resource
//   hierarchy is Res parents; the requested resource carries, per role, the
//   set of Access entities of its ancestors, so one policy per role reads
//   `principal in resource.viewer`. cedar-wasm has no entity store, so each
//   request passes its slice: the principal and its groups (with all their
//   memberships, as stored), the resource's ancestors and the actions.
// - casbin: RBAC role inheritance (`g`) for both group membership and grants
//   (S -> "X~R", S -> "X~deny-A"), role templates as policy lines
//   (role, action), the 1,000 ABAC policies as policy lines, and a matcher
//   over the request's ancestor chain.
//
// Both are checked against a reference evaluation of the same model (union
// of grants on the path, deny wins) before they are timed: a modelling error
// fails the run instead of producing a number.
//
//   node peers.mjs model.json [cedar_queries] [casbin_queries]
import { readFileSync } from "node:fs";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { newEnforcer, newModelFromString } from "casbin";

const model = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cedarN = Number(process.argv[3] ?? 2000);
const casbinN = Number(process.argv[4] ?? 500);

const ROLE_ACTIONS = {
  viewer: ["read"],
  commenter: ["read", "comment"],
  editor: ["read", "comment", "write", "export", "download", "print", "copy", "sign"],
  admin: ["read", "comment", "write", "export", "download", "print", "copy", "sign", "share", "manage", "delete"],
  owner: ["read", "comment", "write", "export", "download", "print", "copy", "sign", "share", "manage", "delete",
          "billing"],
};
const ROLES = Object.keys(ROLE_ACTIONS);
const ACTIONS = ROLE_ACTIONS.owner;
const SUFFIX = model.policies.length ? "" : " (grants only)";
const DENY_ACTIONS = [...new Set(model.grants.filter((g) => g.effect === "deny").map((g) => g.action))].sort();

const parentOf = (path) => {
  const parts = path.split("/");
  return parts.length > 2 ? parts.slice(0, -2).join("/") : null;
};
// Root first.
const chain = (path) => {
  const out = [];
  for (let p = path; p; p = parentOf(p)) out.unshift(p);
  return out;
};
const stats = (ns) => {
  ns.sort((a, b) => a - b);
  const at = (q) => ns[Math.floor(q * (ns.length - 1))] / 1000;
  return { p50_us: +at(0.5).toFixed(3), p99_us: +at(0.99).toFixed(3) };
};
// V8 tiers WebAssembly and JavaScript up over thousands of calls (a trivial
// cedar-wasm call drops from ~700 to ~60 µs): warm each peer up for a while
// before timing it, cycling through its queries.
const WARMUP_MS = Number(process.env.PEER_WARMUP_MS ?? 3000);
function warmUp(qs, f) {
  const end = Date.now() + WARMUP_MS;
  for (let i = 0; Date.now() < end || i < qs.length; i++) f(qs[i % qs.length]);
}
const groupsOf = (user) => model.groups[Number(user.slice(1))] ?? [];
const inTenSlash8 = (ip) => ip.startsWith("10.");

// ---- the reference: union of grants on the path, any denial wins.
const grantsAt = new Map();  // "subject|resource" -> grants
for (const g of model.grants) {
  const k = `${g.subject}|${g.resource}`;
  if (!grantsAt.has(k)) grantsAt.set(k, []);
  grantsAt.get(k).push(g);
}
const policiesAt = new Map();
for (const p of model.policies) {
  const r = p.target.resource;
  if (!policiesAt.has(r)) policiesAt.set(r, []);
  policiesAt.get(r).push(p);
}
function reference(q) {
  const subjects = [`user:${q.user}`, ...groupsOf(q.user).map((g) => `group:${g}`)];
  let allow = false, deny = false;
  for (const res of chain(q.resource)) {
    for (const s of subjects)
      for (const g of grantsAt.get(`${s}|${res}`) ?? []) {
        if (g.effect === "allow" && ROLE_ACTIONS[g.role].includes(q.action)) allow = true;
        if (g.effect === "deny" && g.action === q.action) deny = true;
      }
    for (const p of policiesAt.get(res) ?? []) {
      if (!p.target.actions.includes(q.action)) continue;
      if (p.effect === "deny" && !inTenSlash8(q.ip)) deny = true;
      if (p.effect === "permit" && groupsOf(q.user).includes(p.subject.groups[0])) allow = true;
    }
  }
  return allow && !deny;
}

// ---- Cedar
function runCedar() {
  const uid = (type, id) => ({ type, id });
  const ref = (type, id) => ({ __entity: { type, id } });
  const staticPolicies = {};
  for (const r of ROLES)
    staticPolicies[`role-${r}`] = `permit(principal, action in Action::"role-${r}", resource) when { principal in resource.${r} };`;
  for (const a of DENY_ACTIONS)
    staticPolicies[`deny-${a}`] = `forbid(principal, action == Action::"${a}", resource) when { principal in resource.deny_${a} };`;
  for (const p of model.policies) {
    const res = JSON.stringify(p.target.resource);
    staticPolicies[p.id] =
      p.effect === "deny"
        ? `forbid(principal, action == Action::"export", resource in Res::${res}) unless { context.ip.isInRange(ip("10.0.0.0/8")) };`
        : `permit(principal in Group::${JSON.stringify(p.subject.groups[0])}, action == Action::"read", resource in Res::${res});`;
  }
  const t0 = Date.now();
  const parsed = cedar.preparsePolicySet("pdp", { staticPolicies });
  if (parsed.type !== "success") throw new Error(JSON.stringify(parsed.errors).slice(0, 500));
  // The application's entity store: users and groups with their memberships.
  const memberships = new Map();  // subject -> parents
  const add = (s, parent) => {
    if (!memberships.has(s)) memberships.set(s, []);
    memberships.get(s).push(parent);
  };
  for (const g of model.grants)
    add(g.subject, g.effect === "allow" ? uid("Access", `${g.resource}#${g.role}`) : uid("Deny", `${g.resource}#${g.action}`));
  const groupEntity = new Map();
  const groupOf = (g) => {
    if (!groupEntity.has(g)) groupEntity.set(g, { uid: uid("Group", g), attrs: {}, parents: memberships.get(`group:${g}`) ?? [] });
    return groupEntity.get(g);
  };
  const userEntity = (u) => ({
    uid: uid("User", u),
    attrs: {},
    parents: [...groupsOf(u).map((g) => uid("Group", g)), ...(memberships.get(`user:${u}`) ?? [])],
  });
  const loadMs = Date.now() - t0;
  const actionEntities = ACTIONS.map((a) => ({
    uid: uid("Action", a),
    attrs: {},
    parents: ROLES.filter((r) => ROLE_ACTIONS[r].includes(a)).map((r) => uid("Action", `role-${r}`)),
  })).concat(ROLES.map((r) => ({ uid: uid("Action", `role-${r}`), attrs: {}, parents: [] })));
  const users = new Map();
  const slice = (q) => {
    if (!users.has(q.user)) users.set(q.user, userEntity(q.user));
    const path = chain(q.resource);
    const leafAttrs = {};
    for (const r of ROLES) leafAttrs[r] = path.map((p) => ref("Access", `${p}#${r}`));
    for (const a of DENY_ACTIONS) leafAttrs[`deny_${a}`] = path.map((p) => ref("Deny", `${p}#${a}`));
    return [
      users.get(q.user),
      ...groupsOf(q.user).map(groupOf),
      ...path.map((p) => ({
        uid: uid("Res", p),
        attrs: p === q.resource ? leafAttrs : {},
        parents: parentOf(p) ? [uid("Res", parentOf(p))] : [],
      })),
      ...actionEntities,
    ];
  };
  const call = (q, entities) => {
    const r = cedar.statefulIsAuthorized({
      principal: uid("User", q.user),
      action: uid("Action", q.action),
      resource: uid("Res", q.resource),
      context: { ip: { __extn: { fn: "ip", arg: q.ip } } },
      preparsedPolicySetId: "pdp",
      entities,
    });
    if (r.type !== "success") throw new Error(JSON.stringify(r.errors).slice(0, 500));
    if (r.response.diagnostics.errors.length) throw new Error(JSON.stringify(r.response.diagnostics.errors).slice(0, 500));
    return r.response.decision === "allow";
  };
  const qs = model.queries.slice(0, cedarN);
  let mismatches = 0;
  for (const q of qs) if (call(q, slice(q)) !== reference(q)) mismatches++;
  if (mismatches) throw new Error(`cedar disagrees with the reference on ${mismatches} of ${qs.length} queries`);
  warmUp(qs, (q) => call(q, slice(q)));
  const ns = [], sliceNs = [];
  let permits = 0;
  for (const q of qs) {
    const t = process.hrtime.bigint();
    const entities = slice(q);
    const t1 = process.hrtime.bigint();
    const ok = call(q, entities);
    ns.push(Number(process.hrtime.bigint() - t1));
    sliceNs.push(Number(t1 - t));
    if (ok) permits++;
  }
  const sl = stats(sliceNs);
  return { engine: "cedar-wasm " + cedar.getCedarVersion() + SUFFIX, queries: qs.length, policies: Object.keys(staticPolicies).length,
           load_ms: loadMs, permit_rate: +(permits / qs.length).toFixed(4), reference_agreement: 1,
           slice_p50_us: sl.p50_us, ...stats(ns) };
}

// ---- casbin
async function runCasbin() {
  const levels = [0, 1, 2, 3, 4, 5];
  // "~" joins resource and role: casbin's config reader takes "#" for a comment.
  const grantAt = levels.map((i) => `g(r.sub, r.o${i} + "~" + p.sub)`).join(" || ");
  const onPath = levels.map((i) => `p.obj == r.o${i}`).join(" || ");
  const m = newModelFromString(`
[request_definition]
r = sub, act, ip, o0, o1, o2, o3, o4, o5
[policy_definition]
p = sub, obj, act, eft, cidr
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = r.act == p.act && ((p.obj == "*" && (${grantAt})) || (p.obj != "*" && (${onPath}) && (p.sub == "*" || g(r.sub, p.sub)) && (p.cidr == "-" || !ipMatch(r.ip, p.cidr))))
`);
  const e = await newEnforcer(m);
  const t0 = Date.now();
  const ps = [];
  for (const r of ROLES) for (const a of ROLE_ACTIONS[r]) ps.push([r, "*", a, "allow", "-"]);
  for (const a of DENY_ACTIONS) ps.push([`deny-${a}`, "*", a, "deny", "-"]);
  for (const p of model.policies) {
    if (p.effect === "deny") ps.push(["*", p.target.resource, "export", "deny", "10.0.0.0/8"]);
    else ps.push([`group:${p.subject.groups[0]}`, p.target.resource, "read", "allow", "-"]);
  }
  await e.addPolicies(ps);
  const gs = [];
  model.groups.forEach((groups, u) => { for (const g of groups) gs.push([`user:u${u}`, `group:${g}`]); });
  for (const g of model.grants)
    gs.push([g.subject, g.effect === "allow" ? `${g.resource}~${g.role}` : `${g.resource}~deny-${g.action}`]);
  await e.addGroupingPolicies([...new Set(gs.map((x) => x.join("\n")))].map((x) => x.split("\n")));
  const loadMs = Date.now() - t0;
  const args = (q) => [`user:${q.user}`, q.action, q.ip, ...chain(q.resource)];
  const qs = model.queries.slice(0, casbinN);
  let mismatches = 0;
  for (const q of qs) if (e.enforceSync(...args(q)) !== reference(q)) mismatches++;
  if (mismatches) throw new Error(`casbin disagrees with the reference on ${mismatches} of ${qs.length} queries`);
  warmUp(qs, (q) => e.enforceSync(...args(q)));
  const ns = [];
  let permits = 0;
  for (const q of qs) {
    const a = args(q);
    const t = process.hrtime.bigint();
    const ok = e.enforceSync(...a);
    ns.push(Number(process.hrtime.bigint() - t));
    if (ok) permits++;
  }
  return { engine: "casbin " + JSON.parse(readFileSync(new URL("./node_modules/casbin/package.json", import.meta.url))).version + SUFFIX,
           queries: qs.length, policies: ps.length, load_ms: loadMs, permit_rate: +(permits / qs.length).toFixed(4),
           reference_agreement: 1, ...stats(ns) };
}

// cedar-wasm's cost per call with the smallest possible request (one policy,
// three entities): what no modelling can go below.
function runCedarFloor() {
  const uid = (type, id) => ({ type, id });
  cedar.preparsePolicySet("floor", { staticPolicies: { p: `permit(principal, action == Action::"read", resource in Res::"r");` } });
  const entities = [
    { uid: uid("User", "u"), attrs: {}, parents: [] },
    { uid: uid("Res", "d"), attrs: {}, parents: [uid("Res", "r")] },
    { uid: uid("Action", "read"), attrs: {}, parents: [] },
  ];
  const call = () => cedar.statefulIsAuthorized({ principal: uid("User", "u"), action: uid("Action", "read"),
    resource: uid("Res", "d"), context: {}, preparsedPolicySetId: "floor", entities }).response.decision === "allow";
  if (!call()) throw new Error("cedar floor: expected allow");
  warmUp([0], call);
  const ns = [];
  for (let i = 0; i < 2000; i++) {
    const t = process.hrtime.bigint();
    call();
    ns.push(Number(process.hrtime.bigint() - t));
  }
  return { engine: "cedar-wasm floor (1 policy, 3 entities)", queries: ns.length, policies: 1, permit_rate: 1, ...stats(ns) };
}

console.log(JSON.stringify(runCedar()));
if (model.policies.length) console.log(JSON.stringify(runCedarFloor()));
if (casbinN > 0) console.log(JSON.stringify(await runCasbin()));
