"""Every word the console shows, in English and Chinese, from this one catalogue; and which
language a request is answered in (`?lang=`, then the remembered choice, then
Accept-Language)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Lang(StrEnum):
    EN = "en"
    ZH = "zh"

    @property
    def tag(self) -> str:
        """The HTML `lang` attribute's value."""
        return "zh-CN" if self is Lang.ZH else "en"


# key: (English, 中文). A text with {names} is filled by `Words.__call__`.
WORDS = MappingProxyType({
    "product": ("Port Exchange Gateway", "口岸数据交换网关"),
    "console": ("Console", "控制台"),
    "skip": ("Skip to content", "跳到正文"),
    "nav": ("Console pages", "控制台页面"),
    "overview": ("Overview", "总览"),
    "dead_letters": ("Dead letters", "死信"),
    "documents": ("Documents", "单证"),
    "search": ("Search", "查询"),
    "key_help": ("The whole key, or its start.", "完整业务键或其开头部分。"),
    "decided_at": ("Decided at", "处理时间"),
    "status": ("Status", "状态"),
    "recipients": ("Recipients", "接收方数"),
    "submission": ("Submission id", "提交编号"),
    "state_refused": ("refused", "已拒绝"),
    "duplicate_of": ("{state} (duplicate of {first})", "{state}（与 {first} 重复）"),
    "of_messages": ("{state}: {accepted} of {parts} messages",
                    "{state}：{parts} 条报文中 {accepted} 条"),
    "no_documents": ("No documents match.", "没有符合条件的单证。"),
    "documents_total": ("{total} submission(s); page {page} of {pages}.",
                        "共 {total} 份提交；第 {page} / {pages} 页。"),
    "language": ("Language", "语言"),
    "signed_in": ("Signed in as {holder} ({role})", "已登录：{holder}（{role}）"),
    "role_operator": ("operator", "运维人员"),
    "role_auditor": ("auditor", "审计人员"),
    "sign_out": ("Sign out", "退出"),
    "sign_in": ("Sign in", "登录"),
    "token": ("Console token", "控制台令牌"),
    "token_help": ("The token an administrator bound to you in the keyring.",
                   "管理员在密钥环中为您绑定的令牌。"),
    "token_refused": ("The token is not bound to an operator or auditor, or not valid now.",
                      "该令牌未绑定运维或审计角色，或当前无效。"),
    "refused_title": ("Not allowed", "无权访问"),
    "refused_role": ("This page needs the role {role}; you are signed in as {holder}.",
                     "此页面需要{role}角色；您当前以{holder}身份登录。"),
    "form_expired": ("The form has expired; open the page again.", "表单已过期，请重新打开页面。"),
    "counts_since": ("Counted by this gateway process since it started.",
                     "本网关进程自启动以来的统计。"),
    "map": ("Map of exchange", "交换一张图"),
    "map_desc": ("Agencies on a circle; a line from sender to recipient for each flow, "
                 "thicker for more deliveries; refusals drawn in red towards the gateway.",
                 "各单位分布在圆周上；发送方到接收方的连线表示数据流，越粗表示投递越多；"
                 "被拒绝的单证以红线指向网关。"),
    "gateway": ("Gateway", "网关"),
    "legend_flow": ("Deliveries", "投递"),
    "legend_refused": ("Refused", "拒绝"),
    "flow_title": ("{sender} → {recipient}: {count} deliveries",
                   "{sender} → {recipient}：{count} 次投递"),
    "refused_title_edge": ("{agency}: {count} refused", "{agency}：{count} 份被拒绝"),
    "node_title": ("{name} ({agency}): {accepted} accepted, {refused} refused",
                   "{name}（{agency}）：接受 {accepted}，拒绝 {refused}"),
    "totals": ("Totals", "合计"),
    "accepted": ("Accepted", "接受"),
    "refused": ("Refused", "拒绝"),
    "acceptance_rate": ("Acceptance rate", "接受率"),
    "refusal_rate": ("Refusal rate", "拒绝率"),
    "delivered": ("Delivered to it", "投递给它"),
    "decision_time": ("Mean decision time", "平均处理时间"),
    "ingress_lag": ("Ingress lag (records)", "入口积压（条）"),
    "by_type": ("By document type", "按单证类型"),
    "by_agency": ("By agency", "按单位"),
    "document_type": ("Document type", "单证类型"),
    "agency": ("Agency", "单位"),
    "none_yet": ("Nothing counted yet.", "暂无统计。"),
    "partition": ("Partition", "分区"),
    "filter": ("Filter", "筛选"),
    "any": ("any", "全部"),
    "code": ("Error code", "错误代码"),
    "rule": ("Rule", "规则"),
    "line": ("Line", "行"),
    "location": ("Location", "位置"),
    "received_at": ("Received at", "接收时间"),
    "sender": ("Sender", "发送方"),
    "business_key": ("Business key", "业务键"),
    "retry_state": ("Retry", "重试"),
    "select": ("Select", "选择"),
    "select_letter": ("Select dead letter {location}", "选择死信 {location}"),
    "retry_selected": ("Retry selected…", "重试所选…"),
    "retry_one": ("Retry {location}…", "重试 {location}…"),
    "retry_title": ("Retry dead letters", "重试死信"),
    "retry_confirm_text": ("These documents go back on the ingress topic as their agencies "
                           "sent them, under new submission ids, recorded as retried by you.",
                           "以下单证将按原样重新放入入口主题，使用新的提交编号，"
                           "并记录为由您重试。"),
    "retry_confirm": ("Retry now", "立即重试"),
    "retry_none": ("Select at least one dead letter that can be retried.",
                   "请至少选择一封可重试的死信。"),
    "retried_as": ("retried as {submission} by {holder} at {at}: {state}",
                   "已于 {at} 由 {holder} 重试为 {submission}：{state}"),
    "retried_count": ("{count} dead letter(s) put back on the ingress topic.",
                      "已将 {count} 封死信重新放入入口主题。"),
    "state_pending": ("pending", "处理中"),
    "state_accepted": ("accepted", "已接受"),
    "state_rejected": ("refused again", "再次被拒绝"),
    "state_unknown": ("not known yet", "尚无结果"),
    "cut": ("kept cut: cannot be retried", "仅保留片段：不可重试"),
    "no_letters": ("No dead letters match.", "没有符合条件的死信。"),
    "letters_total": ("{total} dead letter(s); page {page} of {pages}.",
                      "共 {total} 封死信；第 {page} / {pages} 页。"),
    "previous": ("Previous page", "上一页"),
    "next": ("Next page", "下一页"),
    "paging": ("Pages", "分页"),
    "back": ("Back to the dead letters", "返回死信列表"),
    # -- contracts (contracts.py)
    "contracts": ("Contracts", "共享协议"),
    "contracts_note": ("The contracts the router holds in force now: what the last (re)load "
                       "that linted clean swapped in.",
                       "路由当前生效的共享协议：最近一次校验通过的加载结果。"),
    "contracts_total": ("{total} contract(s); page {page} of {pages}.",
                        "共 {total} 份协议；第 {page} / {pages} 页。"),
    "no_contracts": ("No contract is in force: every document is refused (default deny).",
                     "没有生效的协议：所有单证均被拒绝（默认拒绝）。"),
    "contract": ("Contract", "协议"),
    "provider": ("Provider", "提供方"),
    "consumers": ("Consumers", "接收方"),
    "document_types": ("Document types", "单证类型"),
    "scope": ("Scope", "范围"),
    "fields": ("Fields", "字段"),
    "masks": ("Masks", "脱敏"),
    "basis": ("Purpose and legal basis", "用途与法律依据"),
    "validity": ("Valid", "有效期"),
    "valid_range": ("{start} to {end}", "{start} 至 {end}"),
    "no_end": ("no end", "长期"),
    "state_in_force": ("in force", "生效中"),
    "state_not_yet": ("not yet in force", "尚未生效"),
    "state_ended": ("ended", "已失效"),
    "whole_record": ("whole record", "完整记录"),
    "no_masks": ("none", "无"),
    "subscription": ("subscription: {events}", "订阅：{events}"),
    "when": ("when {condition}", "条件：{condition}"),
    "personal_basis": ("personal data: {basis}", "个人信息：{basis}"),
    "export_assessment": ("export assessment {reference}", "出境评估 {reference}"),
    "encrypted": ("SM4 envelope", "SM4 数字信封"),
    "lint": ("Lint report", "校验报告"),
    "lint_note": ("The contract directory as it is on disk now, checked as "
                  "`portgw contracts lint` checks it.",
                  "按 `portgw contracts lint` 的规则校验当前磁盘上的协议目录。"),
    "lint_clean": ("{contracts} contract(s) in {files} file(s): no problems.",
                   "{files} 个文件中共 {contracts} 份协议：没有问题。"),
    "lint_problems": ("{count} problem(s): the directory is not loaded until they are fixed.",
                      "{count} 个问题：修正之前该目录不会被加载。"),
    "explain_h": ("Explain a document", "解释单证路由"),
    "explain_note": ("Paste a document as its agency would send it: the gateway reads it as "
                     "it reads a submission and shows what each agency would get under the "
                     "contracts in force. Nothing of it is sent, kept or shown back.",
                     "粘贴发送方将提交的单证：网关按提交时的方式解析，并显示在现行协议下"
                     "各单位将获得的内容。单证不会被发送、保存或回显。"),
    "document": ("Document (XML, EDIFACT or JSON)", "单证（XML、EDIFACT 或 JSON）"),
    "document_help": ("At most 1 MiB, and the sender's own size limit.",
                      "不超过 1 MiB，且不超过发送方的大小限制。"),
    "explain": ("Explain", "解释"),
    "explained_h": ("What the router would do", "路由结果"),
    "read_as": ("Read as {format} (document type {type}) from {sender} at {at}.",
                "按 {format} 解析（单证类型 {type}），发送方 {sender}，时间 {at}。"),
    "explain_refused": ("The document was not read", "单证无法解析"),
    "verdict": ("Verdict", "结果"),
    "verdict_deliver": ("delivered", "投递"),
    "verdict_deny": ("denied", "拒绝"),
    "format": ("Format", "格式"),
    "why_not": ("Why not", "拒绝原因"),
    "scope_cross-department": ("cross-department", "跨部门"),
    "scope_cross-region": ("cross-region", "跨区域"),
    "scope_cross-border": ("cross-border", "跨境"),
    # -- early warnings (warnings.py)
    "warnings": ("Early warnings", "安全预警"),
    "warnings_note": ("The warnings this gateway process holds (read from the warning topic "
                      "at its start and before each warning it decides); who received and "
                      "acknowledged a step, from the trail.",
                      "本网关进程持有的预警（启动时及处理每份预警前从预警主题读取）；"
                      "各步骤的接收与确认情况来自审计链。"),
    "warnings_all": ("Released and filed too", "包括已解除和已备案"),
    "warnings_total": ("{total} warning(s); page {page} of {pages}.",
                       "共 {total} 条预警；第 {page} / {pages} 页。"),
    "no_warnings": ("No warnings match.", "没有符合条件的预警。"),
    "warning_id": ("Warning", "预警编号"),
    "level": ("Level", "级别"),
    "category": ("Category", "类别"),
    "area": ("Area", "区域"),
    "last_step": ("Last step", "最近步骤"),
    "last_step_at": ("{action} at {at} (step {steps})", "{at} {action}（第 {steps} 步）"),
    "issuer": ("Issued by", "发布单位"),
    "received_by": ("Received by", "已接收"),
    "acknowledged_by": ("Acknowledged by", "已确认"),
    "level_I": ("I (red, particularly serious)", "I 级（红色，特别重大）"),
    "level_II": ("II (orange, serious)", "II 级（橙色，重大）"),
    "level_III": ("III (yellow, major)", "III 级（黄色，较大）"),
    "level_IV": ("IV (blue, general)", "IV 级（蓝色，一般）"),
    "warning_DRAFTED": ("drafted, in review", "已起草，审核中"),
    "warning_RETURNED": ("returned", "已退回"),
    "warning_PUBLISHED": ("published", "已发布"),
    "warning_RELEASED": ("released", "已解除"),
    "warning_FILED": ("filed", "已备案"),
    "action_DRAFT": ("draft", "起草"),
    "action_CONTENT_REVIEW": ("content review", "内容审核"),
    "action_CATEGORY_REVIEW": ("category review", "类别审核"),
    "action_LEVEL_REVIEW": ("level review", "级别审核"),
    "action_RE_REVIEW": ("re-review", "复核"),
    "action_TERROR_CHECK": ("terror-relevance check", "涉恐排查"),
    "action_PUBLISH": ("publication", "发布"),
    "action_RETURN": ("return", "退回"),
    "action_CHANGE_LEVEL": ("level change", "级别调整"),
    "action_RELEASE": ("release", "解除"),
    "action_FILE": ("filing", "备案"),
    # -- the document history and trail pages (history.py)
    "trail": ("Trail", "审计链"),
    "history_title": ("History of {document}", "单证追溯：{document}"),
    "history_total": ("{versions} submission(s), {records} trail record(s).",
                      "共 {versions} 次提交，{records} 条审计记录。"),
    "history_none": ("No trail record names this business key (yet).",
                     "（尚）无审计记录涉及此业务键。"),
    "export": ("Export evidence bundle", "导出证据包"),
    "job_busy": ("Another job is running; try again when it is done.",
                 "另一项任务正在运行，请稍后再试。"),
    "job_running": ("Running since {at}, started by {by}.", "{by} 于 {at} 启动，正在运行。"),
    "job_failed": ("The job failed (exit code {code}).", "任务失败（退出码 {code}）。"),
    "bundle_ready": ("Download the evidence bundle (made at {at})",
                     "下载证据包（生成于 {at}）"),
    "recipients_h": ("Recipients", "接收方"),
    "fields_note": ("The fields each recipient got are named with their masks; values are "
                    "never shown.", "仅列出各接收方所得字段的名称及其脱敏规则，从不显示字段值。"),
    "no_recipients": ("No recipient was decided on.", "没有涉及接收方的决定。"),
    "recipient": ("Recipient", "接收方"),
    "decision": ("Decision", "决定"),
    "taken_at": ("Acknowledged at", "签收时间"),
    "not_taken": ("not acknowledged", "未签收"),
    "contract_gone": ("this contract version is no longer loaded",
                      "该协议版本已不再加载"),
    "version_title": ("Version {version} from {sender}: submission {submission} ({format})",
                      "版本 {version}，来自 {sender}：提交 {submission}（{format}）"),
    "timeline": ("Timeline", "时间线"),
    "record": ("Trail record", "审计记录"),
    "reason": ("Reason (the rule)", "理由（规则）"),
    "kind_received": ("received", "已接收"),
    "kind_accepted": ("accepted", "已接受"),
    "kind_rejected": ("refused", "已拒绝"),
    "kind_delivered": ("delivered", "已投递"),
    "kind_redelivered": ("delivered again", "已重新投递"),
    "kind_denied": ("denied", "拒绝共享"),
    "kind_taken": ("acknowledged", "已签收"),
    "kind_notified": ("notified", "已通知"),
    "verify_now": ("Verify now", "立即验证"),
    "refresh": ("Refresh", "刷新"),
    "verification_h": ("Last verification", "最近一次验证"),
    "never_verified": ("Not verified from this console since the gateway started.",
                       "网关启动以来未在控制台验证过。"),
    "verify_ok": ("OK: verified at {at} (started by {by}).", "通过：{at} 验证（由 {by} 发起）。"),
    "verify_broken": ("BROKEN at {at} (started by {by}; exit code {code}): see below.",
                      "{at} 验证发现断裂（由 {by} 发起；退出码 {code}），详见下文。"),
    "chains_h": ("Chains, seals and checkpoints", "链、封印与检查点"),
    "chains_note": ("As read from the trail and checkpoint topics by this console.",
                    "由本控制台从审计链与检查点主题读取。"),
    "no_chains": ("No trail record read yet.", "尚未读到审计记录。"),
    "chain": ("Chain", "链"),
    "records": ("Records", "记录数"),
    "last_seq": ("Last seq", "最后序号"),
    "seals": ("Seals", "封印数"),
    "sealed_to": ("Sealed to seq", "已封印至序号"),
    "last_seal_at": ("Last seal at", "最近封印时间"),
    "checkpoint": ("Checkpoint", "检查点"),
    "checkpoint_of": ("seal {seal}, to seq {seq}, at {at}", "封印 {seal}，至序号 {seq}，{at}"),
    "last_verified": ("Last verification", "最近验证"),
    "chain_ok": ("OK at {at}", "{at} 通过"),
    "chain_broken": ("BROKEN at {at}", "{at} 断裂"),
    "chain_unknown": ("not verified ({at}: the job failed)", "未验证（{at}：任务失败）"),
    # -- the overview's plots over time (plots.py)
    "over_time_h": ("Over time", "随时间变化"),
    "over_time_note": ("Per minute over the last {hours} hours, to {now} UTC; read from the "
                       "receipt and trail topics (every gateway process's) since the console "
                       "began following them.",
                       "最近 {hours} 小时逐分钟统计，截至 UTC {now}；数据取自回执与审计链主题"
                       "（涵盖所有网关进程），自控制台开始跟踪起。"),
    "throughput_h": ("Documents and deliveries per minute", "每分钟单证与投递量"),
    "deliveries": ("Deliveries", "投递"),
    "latency_h": ("Submit → delivery latency", "提交→投递时延"),
    "p50": ("p50 (median)", "p50（中位数）"),
    "p99": ("p99", "p99（99 分位）"),
    "lag_h": ("Ingress lag", "入口积压"),
    "minute_utc": ("Minute (UTC)", "分钟（UTC）"),
    "plot_figures": ("The figures, minute by minute", "逐分钟数据"),
    "plot_figures_caption": ("Minutes with any activity, newest first; each links to the "
                             "documents decided in it.",
                             "有数据的分钟，最新在前；每一分钟链接到其间处理的单证。"),
    "no_minutes": ("Nothing in this window yet.", "此时间窗口内暂无数据。"),
    "throughput_desc": ("Over {minutes} minutes: {accepted} documents accepted, {refused} "
                        "refused, {delivered} deliveries; the busiest minute, {at} UTC, "
                        "decided {peak}.",
                        "{minutes} 分钟内：接受 {accepted} 份单证，拒绝 {refused} 份，投递 "
                        "{delivered} 次；最繁忙的一分钟（UTC {at}）处理 {peak} 份。"),
    "latency_desc": ("{documents} documents delivered; at {at} UTC p50 {p50} and p99 {p99}; "
                     "the highest p99, {worst}, at {worst_at} UTC.",
                     "共投递 {documents} 份单证；UTC {at} 时 p50 为 {p50}，p99 为 {p99}；"
                     "最高 p99 为 {worst}（UTC {worst_at}）。"),
    "latency_none": ("No document delivered in this window yet.", "此时间窗口内尚无投递的单证。"),
    "lag_desc": ("The most ingress lag sampled: {most} records at {at} UTC; the last "
                 "sample {last}.",
                 "采样到的最大入口积压：{most} 条（UTC {at}）；最近一次采样 {last} 条。"),
    "lag_none": ("Ingress lag not sampled in this window yet.", "此时间窗口内尚未采样入口积压。"),
    # -- one early warning's page
    "warning_title": ("Early warning {id}", "预警 {id}"),
    "warning_caption": ("The warning as it stands", "预警现状"),
    "back_to_warnings": ("All early warnings", "全部预警"),
    "steps_h": ("Its steps", "处置步骤"),
    "steps_note": ("Each step the gateway accepted, in order, by the agency that submitted it "
                   "(the people who acted are in the trail, not here), and which agencies "
                   "received and acknowledged it.",
                   "网关受理的每一步，按顺序列出提交单位（具体人员见审计链，此处不显示），"
                   "以及收到和签收该步的单位。"),
    "step_number": ("Step", "步骤"),
    "step": ("Action", "动作"),
    "step_at": ("At", "时间"),
    "submitted_by": ("Submitted by", "提交单位"),
    "warning_unknown": ("The gateway's warning book holds no warning with this id.",
                        "网关预警簿中没有此编号的预警。"),
    # -- documents by time (documents.py)
    "time_from": ("From (UTC)", "起始时间（UTC）"),
    "time_to": ("To (UTC, that minute included)", "截止时间（UTC，含该分钟）"),
    "time_help": ("Times in UTC, e.g. 2026-12-07T08:30.", "UTC 时间，例如 2026-12-07T08:30。"),
    "time_invalid": ("{field}: not a time; give YYYY-MM-DDTHH:MM (UTC).",
                     "{field}：不是有效时间；请按 YYYY-MM-DDTHH:MM（UTC）填写。"),
    # -- a verification's progress (jobs.py)
    "verify_reading": ("Running since {at}, started by {by}: {read} trail messages read.",
                       "{by} 于 {at} 启动，正在运行：已读取 {read} 条审计链消息。"),
    "verify_checking": ("Running since {at}, started by {by}: {verified} records verified, "
                        "{done} of {chains} chains done.",
                        "{by} 于 {at} 启动，正在运行：已验证 {verified} 条记录，"
                        "{chains} 条链中已完成 {done} 条。"),
    "verify_references": ("Running since {at}, started by {by}: {verified} records and "
                          "{chains} chains verified; now checking the messages they name.",
                          "{by} 于 {at} 启动，正在运行：已验证 {verified} 条记录、{chains} "
                          "条链；正在核对其引用的消息。"),
    "following": ("This page refreshes every {seconds} s while the job runs.",
                  "任务运行期间，本页每 {seconds} 秒自动刷新。"),
    "stop_following": ("Stop refreshing", "停止自动刷新"),
    "follow_again": ("Refresh automatically", "自动刷新"),
})


@dataclass(frozen=True, slots=True)
class Words:
    lang: Lang

    def __call__(self, key: str, **values: object) -> str:
        text = WORDS[key][1 if self.lang is Lang.ZH else 0]
        return text.format(**values) if values else text


def choose_lang(asked: str | None, remembered: str | None, accept_language: str) -> Lang:
    """`?lang=` first, then the cookie, then the first of zh/en that Accept-Language
    prefers (by its q values), else English."""
    for choice in (asked, remembered):
        if choice in (Lang.EN.value, Lang.ZH.value):
            return Lang(choice)
    ranked: list[tuple[float, int, Lang]] = []
    for order, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        if base in (Lang.EN.value, Lang.ZH.value):
            ranked.append((-_quality(params), order, Lang(base)))
    return min(ranked)[2] if ranked else Lang.EN


def _quality(params: str) -> float:
    name, _, value = params.strip().partition("=")
    if name.strip() != "q":
        return 1.0
    try:
        return float(value)
    except ValueError:
        return 0.0
