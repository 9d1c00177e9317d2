//! The console's words in Vietnamese (first, the default) and English: one table, so a
//! string missing a translation shows up in review (and in the test below).

/// A page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Tiếng Việt (default).
    Vi,
    /// English.
    En,
}

impl Lang {
    /// The language a cookie or query value names (Vietnamese unless `en`).
    pub fn parse(s: &str) -> Lang {
        if s.eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Vi
        }
    }

    /// The `lang` attribute and cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The text of `key`; the key itself if the table lacks it (caught by the tests).
    pub fn t(self, key: &str) -> &'static str {
        match TEXTS.iter().find(|(k, _, _)| *k == key) {
            Some((_, vi, en)) => match self {
                Lang::Vi => vi,
                Lang::En => en,
            },
            None => "?",
        }
    }

    /// A list category's name (`gambling` → "cờ bạc"); an unknown one as is.
    pub fn category(self, id: &str) -> String {
        match CATEGORIES.iter().find(|(k, _, _)| *k == id) {
            Some((_, vi, en)) => match self {
                Lang::Vi => (*vi).to_owned(),
                Lang::En => (*en).to_owned(),
            },
            None => id.to_owned(),
        }
    }

    /// A service group's name (`games` → "trò chơi").
    pub fn service_group(self, id: &str) -> String {
        match SERVICE_GROUPS.iter().find(|(k, _, _)| *k == id) {
            Some((_, vi, en)) => match self {
                Lang::Vi => (*vi).to_owned(),
                Lang::En => (*en).to_owned(),
            },
            None => id.to_owned(),
        }
    }

    /// A service's name: the catalog's Vietnamese or English one.
    pub fn service(self, s: &crate::services::catalog::Service) -> String {
        match self {
            Lang::Vi => s.name_vi.clone(),
            Lang::En => s.name_en.clone(),
        }
    }

    /// A weekday (`mon`..`sun`), short.
    pub fn day(self, d: &str) -> &'static str {
        let key = match d {
            "mon" => "day_mon",
            "tue" => "day_tue",
            "wed" => "day_wed",
            "thu" => "day_thu",
            "fri" => "day_fri",
            "sat" => "day_sat",
            _ => "day_sun",
        };
        self.t(key)
    }
}

/// Weekdays as the schedules name them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// List categories: id, Vietnamese, English.
const CATEGORIES: &[(&str, &str, &str)] = &[
    ("adult", "người lớn", "adult"),
    ("gambling", "cờ bạc", "gambling"),
    ("violence", "bạo lực", "violence"),
    ("drugs", "ma túy", "drugs"),
    ("dating", "hẹn hò", "dating"),
    ("malware", "mã độc", "malware"),
    ("phishing", "lừa đảo", "phishing"),
    ("scam", "lừa đảo", "scams"),
    ("csam", "xâm hại trẻ em", "child abuse"),
    ("self_harm", "tự gây hại", "self-harm"),
    ("weapons", "vũ khí", "weapons"),
    ("piracy", "vi phạm bản quyền", "piracy"),
    ("proxy", "vượt tường lửa", "proxies"),
    ("ads", "quảng cáo", "ads"),
    ("tracking", "theo dõi", "tracking"),
    ("social", "mạng xã hội", "social networks"),
    ("games", "trò chơi", "games"),
];

/// Service groups: id, Vietnamese, English.
const SERVICE_GROUPS: &[(&str, &str, &str)] = &[
    ("social", "mạng xã hội", "social networks"),
    ("games", "trò chơi", "games"),
    ("video", "video", "video"),
    ("chat", "nhắn tin", "messaging"),
    ("dating", "hẹn hò", "dating"),
    ("anonymous_chat", "trò chuyện ẩn danh", "anonymous chat"),
    ("ai_companion", "bạn đồng hành AI", "AI companions"),
    ("streaming", "phát trực tuyến", "streaming"),
];

/// Every string: key, Vietnamese, English.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app_name", "KidSafe DNS", "KidSafe DNS"),
    ("skip", "Bỏ qua đến nội dung", "Skip to content"),
    ("nav_home", "Tổng quan", "Overview"),
    ("nav_users", "Tài khoản", "Accounts"),
    ("nav_reviews", "Báo cáo", "Reports"),
    ("logout", "Đăng xuất", "Log out"),
    ("lang_switch", "English", "Tiếng Việt"),
    ("login_title", "Đăng nhập", "Log in"),
    ("username", "Tên đăng nhập", "User name"),
    ("password", "Mật khẩu", "Password"),
    ("login_button", "Đăng nhập", "Log in"),
    (
        "login_failed",
        "Sai tên đăng nhập hoặc mật khẩu.",
        "Wrong user name or password.",
    ),
    (
        "login_limited",
        "Quá nhiều lần thử. Vui lòng thử lại sau một giờ.",
        "Too many attempts. Try again in an hour.",
    ),
    ("setup_title", "Thiết lập lần đầu", "First-run setup"),
    (
        "setup_intro",
        "Tạo tài khoản quản trị. Liên kết này chỉ dùng được một lần.",
        "Create the administrator account. This link works once.",
    ),
    (
        "setup_button",
        "Tạo tài khoản quản trị",
        "Create the administrator",
    ),
    (
        "setup_invalid",
        "Liên kết thiết lập không hợp lệ hoặc đã được dùng.",
        "The setup link is invalid or was used already.",
    ),
    (
        "password_hint",
        "Ít nhất 10 ký tự.",
        "At least 10 characters.",
    ),
    (
        "err_name",
        "Tên không hợp lệ (1 đến 64 ký tự).",
        "Invalid name (1 to 64 characters).",
    ),
    (
        "err_name_taken",
        "Tên này đã được dùng.",
        "That name is taken.",
    ),
    (
        "err_password_short",
        "Mật khẩu quá ngắn (ít nhất 10 ký tự).",
        "The password is too short (at least 10 characters).",
    ),
    ("err_no_user", "Không có tài khoản này.", "No such account."),
    (
        "err_forbidden",
        "Bạn không có quyền xem trang này.",
        "You may not see this page.",
    ),
    ("err_not_found", "Không tìm thấy.", "Not found."),
    (
        "err_csrf",
        "Biểu mẫu đã hết hạn. Vui lòng tải lại trang và thử lại.",
        "The form expired. Reload the page and try again.",
    ),
    (
        "err_store",
        "Không lưu được. Vui lòng thử lại.",
        "Could not save. Please try again.",
    ),
    ("err_invalid", "Dữ liệu không hợp lệ", "Invalid input"),
    ("forbidden_title", "Không có quyền", "Forbidden"),
    ("saved", "Đã lưu.", "Saved."),
    ("dashboard_title", "Hồ sơ của gia đình", "Your profiles"),
    (
        "no_profiles",
        "Chưa có hồ sơ nào. Hãy tạo hồ sơ đầu tiên.",
        "No profiles yet. Create the first one.",
    ),
    ("new_profile", "Tạo hồ sơ mới", "New profile"),
    ("profile_name", "Tên hồ sơ", "Profile name"),
    ("create", "Tạo", "Create"),
    ("devices", "Thiết bị", "Devices"),
    ("services_blocked", "Dịch vụ bị chặn", "Blocked services"),
    (
        "categories_blocked",
        "Nhóm nội dung bị chặn",
        "Blocked categories",
    ),
    ("unblocks_active", "Đang tạm mở", "Unblocked now"),
    ("open", "Mở", "Open"),
    (
        "read_only",
        "Từ tệp cấu hình (chỉ xem)",
        "From the config file (read only)",
    ),
    ("previous", "Trang trước", "Previous"),
    ("pages", "Các trang", "Pages"),
    (
        "default_profile",
        "Mặc định (các thiết bị khác)",
        "Default (every other device)",
    ),
    (
        "profile_id_help",
        "Mã hồ sơ, ví dụ p12 (gõ để tìm trong danh sách gợi ý).",
        "The profile's id, e.g. p12 (type to pick from the suggestions).",
    ),
    ("next", "Trang sau", "Next"),
    ("categories", "Nhóm nội dung", "Categories"),
    (
        "categories_help",
        "Các nhóm được chọn sẽ bị chặn.",
        "Checked categories are blocked.",
    ),
    ("services", "Dịch vụ", "Services"),
    (
        "services_help",
        "Các dịch vụ được chọn sẽ bị chặn.",
        "Checked services are blocked.",
    ),
    ("save", "Lưu", "Save"),
    ("add_device", "Thêm thiết bị", "Add a device"),
    (
        "device_ip",
        "Địa chỉ IP của thiết bị",
        "The device's IP address",
    ),
    (
        "device_ip_help",
        "Ví dụ 192.168.1.50. Đặt địa chỉ cố định cho thiết bị trong bộ định tuyến.",
        "For example 192.168.1.50. Give the device a fixed address in the router.",
    ),
    ("add", "Thêm", "Add"),
    ("remove", "Xóa", "Remove"),
    ("no_devices", "Chưa có thiết bị nào.", "No devices yet."),
    ("setup_steps", "Cách cài đặt", "How to set it up"),
    (
        "step_router",
        "Bộ định tuyến: đặt DNS là",
        "Router: set the DNS server to",
    ),
    (
        "step_android",
        "Android: Cài đặt → Mạng → DNS riêng tư, nhập",
        "Android: Settings → Network → Private DNS, enter",
    ),
    (
        "step_android_none",
        "DNS riêng tư (DoT) chưa được bật trên máy chủ này.",
        "Private DNS (DoT) is not enabled on this server.",
    ),
    ("schedule", "Lịch trong tuần", "Weekly schedule"),
    (
        "schedule_help",
        "Ô đỏ ■: giờ có khung chặn; ô xanh ✓: giờ của khung chỉ cho phép (ngoài giờ đó, các dịch vụ của nó bị chặn).",
        "Red cells ■: hours a block window is on; green cells ✓: hours of an allow-only window (outside them, its services are blocked).",
    ),
    ("add_window", "Thêm khung giờ", "Add a window"),
    ("days", "Ngày", "Days"),
    ("start", "Bắt đầu", "Start"),
    ("end", "Kết thúc", "End"),
    ("window_groups", "Nhóm dịch vụ", "Service groups"),
    ("everything_listed", "các mục đã chọn", "the selected items"),
    ("no_windows", "Chưa có khung giờ nào.", "No windows yet."),
    ("hour", "Giờ", "Hour"),
    ("unblock", "Tạm mở dịch vụ", "Unblock a service"),
    ("unblock_for", "Mở trong 60 phút", "Unblock for 60 minutes"),
    ("service", "Dịch vụ", "Service"),
    ("until", "đến", "until"),
    (
        "no_unblocks",
        "Không có dịch vụ nào đang được tạm mở.",
        "Nothing is unblocked right now.",
    ),
    ("check", "Trang này có an toàn không?", "Is this site safe?"),
    (
        "check_name",
        "Tên miền hoặc địa chỉ trang",
        "Domain or page address",
    ),
    ("check_button", "Kiểm tra", "Check"),
    (
        "verdict_blocked",
        "Bị chặn cho hồ sơ này",
        "Blocked for this profile",
    ),
    (
        "verdict_allowed",
        "Được phép cho hồ sơ này",
        "Allowed for this profile",
    ),
    (
        "verdict_safesearch",
        "Được chuyển sang chế độ tìm kiếm an toàn",
        "Sent to SafeSearch",
    ),
    ("listed_in", "Có trong danh sách", "Listed in"),
    (
        "not_listed",
        "Không có trong danh sách chặn chung.",
        "Not on the shared block list.",
    ),
    ("users_title", "Tài khoản", "Accounts"),
    ("role", "Vai trò", "Role"),
    ("role_admin", "Quản trị", "Administrator"),
    ("role_reviewer", "Người duyệt báo cáo", "Reviewer"),
    ("role_owner", "Phụ huynh / giáo viên", "Parent / teacher"),
    ("new_user", "Tạo tài khoản", "New account"),
    ("profiles", "Hồ sơ", "Profiles"),
    ("assign", "Giao hồ sơ", "Assign a profile"),
    ("user", "Tài khoản", "Account"),
    ("profile", "Hồ sơ", "Profile"),
    ("reviews_title", "Báo cáo chờ duyệt", "Reports to review"),
    ("no_reports", "Không có báo cáo nào.", "No reports."),
    ("site", "Trang", "Site"),
    ("category", "Nhóm", "Category"),
    ("reports_count", "Số lần báo cáo", "Times reported"),
    ("last_seen", "Lần cuối", "Last reported"),
    ("notes", "Ghi chú", "Notes"),
    ("status", "Trạng thái", "Status"),
    ("status_open", "Chờ duyệt", "Open"),
    ("status_accepted", "Đã chấp nhận", "Accepted"),
    ("status_rejected", "Đã từ chối", "Rejected"),
    ("accept", "Chấp nhận", "Accept"),
    ("reject", "Từ chối", "Reject"),
    ("reason", "Lý do", "Reason"),
    ("filter_all", "Tất cả", "All"),
    ("day_mon", "T2", "Mon"),
    ("day_tue", "T3", "Tue"),
    ("day_wed", "T4", "Wed"),
    ("day_thu", "T5", "Thu"),
    ("day_fri", "T6", "Fri"),
    ("day_sat", "T7", "Sat"),
    ("day_sun", "CN", "Sun"),
    ("time_zone", "Múi giờ", "Time zone"),
    ("back", "Quay lại", "Back"),
    ("nav_published", "Đã công bố", "Published"),
    (
        "published_title",
        "Danh sách đã công bố",
        "What was published",
    ),
    (
        "published_help",
        "Mỗi quyết định của người duyệt, mới nhất trước: tên nào vào danh sách nào, lúc nào, do ai. Hoàn tác sẽ gỡ tên khỏi danh sách và mở lại báo cáo.",
        "Every reviewer decision, newest first: which name went to which list, when and by whom. Reverting takes the name off the list and opens the report again.",
    ),
    (
        "not_central",
        "Máy chủ này không công bố danh sách (chưa cấu hình [publish]); quyết định chỉ được ghi trong hàng đợi báo cáo.",
        "This server publishes no lists ([publish] is not configured); decisions are recorded in the reports queue only.",
    ),
    (
        "no_decisions",
        "Chưa có quyết định nào.",
        "No decisions yet.",
    ),
    ("decision", "Quyết định", "Decision"),
    ("list", "Danh sách", "List"),
    ("allowlist", "danh sách cho phép", "allowlist"),
    ("serial", "Số phiên bản", "Serial"),
    ("decided_by", "Người duyệt", "Reviewer"),
    ("decided_at", "Lúc", "When"),
    ("reverted", "Đã hoàn tác", "Reverted"),
    ("revert", "Hoàn tác", "Revert"),
    ("sort_by", "Sắp xếp", "Order"),
    ("sort_newest", "Mới nhất", "Newest"),
    ("sort_count", "Nhiều báo cáo nhất", "Most reported"),
    ("sort_last_seen", "Báo cáo gần đây", "Recently reported"),
    ("publish_to", "Công bố vào", "Publish to"),
    ("revert_reason", "Lý do hoàn tác", "Why revert"),
    ("older", "Cũ hơn", "Older"),
    ("newest", "Mới nhất", "Newest"),
    (
        "published_ok",
        "Đã chấp nhận và công bố.",
        "Accepted and published.",
    ),
    ("reverted_ok", "Đã hoàn tác.", "Reverted."),
    (
        "err_decided",
        "Báo cáo này đã được quyết định (hoặc không còn gì để hoàn tác).",
        "This report was already decided (or there is nothing to revert).",
    ),
    // The dashboard's activity counts.
    ("activity", "Hoạt động", "Activity"),
    ("today", "Hôm nay", "Today"),
    ("this_week", "Tuần này", "This week"),
    ("activity_queries", "Truy vấn", "Queries"),
    ("activity_blocked", "Bị chặn", "Blocked"),
    ("activity_bypass", "Cố vượt bộ lọc", "Bypass attempts"),
    ("activity_by_kind", "Bị chặn theo loại", "Blocked by kind"),
    ("activity_what", "Loại", "What"),
    (
        "activity_own_list",
        "Danh sách chặn riêng",
        "Own block list",
    ),
    (
        "activity_unsafe_search",
        "Công cụ tìm kiếm không an toàn",
        "Unsafe search engines",
    ),
    (
        "bypass_canary",
        "Tắt lọc qua DoH của trình duyệt",
        "Browser DoH switch-off",
    ),
    (
        "bypass_relay",
        "iCloud Private Relay",
        "iCloud Private Relay",
    ),
    (
        "bypass_resolver",
        "Máy chủ DNS công cộng",
        "Public DNS resolvers",
    ),
    ("bypass_vpn", "VPN / proxy", "VPN / proxy"),
    // Device setup and schedule windows (issue 17).
    (
        "step_clientid_hint",
        "Điện thoại, máy tính bảng, máy tính: thêm thiết bị bằng một ClientID (chữ thường, số và dấu gạch ngang, ví dụ be-an-dien-thoai) để có các bước cài đặt riêng cho nó.",
        "Phones, tablets, computers: add the device as a ClientID (lowercase letters, digits and hyphens, e.g. an-phone) to get its own setup steps.",
    ),
    ("device_setup", "Cài đặt thiết bị", "Set up device"),
    (
        "step_ios",
        "Tải hồ sơ DNS về thiết bị, rồi mở Cài đặt → Đã tải về hồ sơ → Cài đặt (máy Mac: Cài đặt hệ thống → Quyền riêng tư & Bảo mật → Hồ sơ).",
        "Download the DNS profile on the device, then open Settings → Profile Downloaded → Install (on a Mac: System Settings → Privacy & Security → Profiles).",
    ),
    (
        "download_mobileconfig",
        "Tải hồ sơ DNS (.mobileconfig)",
        "Download the DNS profile (.mobileconfig)",
    ),
    (
        "step_ios_scan",
        "Hoặc quét mã này bằng máy ảnh của iPhone, đăng nhập, rồi tải hồ sơ.",
        "Or scan this code with the iPhone's camera, log in, and download the profile.",
    ),
    ("qr_of", "Mã QR của", "QR code of"),
    (
        "step_android_scan",
        "Mã QR của tên máy chủ trên (quét để sao chép).",
        "QR code of the host name above (scan to copy it).",
    ),
    (
        "step_doh_none",
        "DNS qua HTTPS có tên chưa được bật trên máy chủ này (cần server.doh_listen và server.ddr_name hoặc client_id_domain), nên chưa có hồ sơ cho iPhone/Mac hay mẫu DoH cho Windows.",
        "Named DNS over HTTPS is not enabled on this server (it needs server.doh_listen and server.ddr_name or client_id_domain), so there is no iPhone/Mac profile or Windows DoH template.",
    ),
    (
        "step_windows",
        "Cài đặt → Mạng & Internet → thuộc tính mạng → Gán máy chủ DNS → Sửa: đặt địa chỉ máy chủ DNS, chọn Mã hóa DNS qua HTTPS: Bật (mẫu thủ công) với mẫu:",
        "Settings → Network & internet → network properties → DNS server assignment → Edit: set the DNS server address, DNS over HTTPS: On (manual template), with the template:",
    ),
    (
        "step_windows_ps",
        "Hoặc trong PowerShell (chạy với quyền quản trị), rồi đặt địa chỉ đó làm máy chủ DNS của card mạng:",
        "Or in PowerShell (as administrator), then make that address the network adapter's DNS server:",
    ),
    (
        "mobileconfig_description",
        "Gửi truy vấn DNS của thiết bị này tới bộ lọc kidsafe-dns qua HTTPS (mã hóa), theo hồ sơ của bé.",
        "Sends this device's DNS queries to the kidsafe-dns filter over HTTPS (encrypted), under the child's profile.",
    ),
    ("window_action", "Khung giờ này", "This window"),
    (
        "action_block",
        "chặn các mục chọn dưới đây trong khung giờ",
        "blocks what is chosen below while it is on",
    ),
    (
        "action_allow",
        "chỉ cho phép các dịch vụ chọn dưới đây trong khung giờ (ngoài giờ bị chặn)",
        "allows the services chosen below only while it is on (blocked outside it)",
    ),
    ("window_services", "Từng dịch vụ", "Single services"),
    (
        "window_categories",
        "Nhóm nội dung (chỉ khung chặn)",
        "Categories (block windows only)",
    ),
    (
        "window_categories_help",
        "Các nhóm được chọn bị chặn thêm trong khung giờ.",
        "Checked categories are also blocked while the window is on.",
    ),
    ("legend_block", "chặn", "blocked"),
    ("legend_allow", "chỉ cho phép lúc này", "allowed only now"),
    ("kind_block", "Chặn", "Block"),
    ("kind_allow", "Chỉ cho phép", "Allow only"),
    (
        "err_allow_categories",
        "Khung chỉ cho phép chỉ nhận dịch vụ; nhóm nội dung thuộc về khung chặn.",
        "An allow-only window takes services only; put categories in a block window.",
    ),
    (
        "err_allow_empty",
        "Khung chỉ cho phép cần ít nhất một dịch vụ hoặc nhóm dịch vụ.",
        "An allow-only window needs at least one service or service group.",
    ),
    // The reviewer's queue by category, sessions and owners' pages (helper "review").
    ("all_categories", "Tất cả các nhóm", "All categories"),
    ("filter", "Lọc", "Filter"),
    ("and_more", "và số hồ sơ khác:", "and more:"),
    (
        "err_category",
        "Không có nhóm này trong các danh sách",
        "No such category in the lists",
    ),
    // Operators: the status and audit pages.
    ("nav_status", "Trạng thái", "Status"),
    ("nav_audit", "Nhật ký", "Audit log"),
    ("status_title", "Trạng thái máy chủ", "Server status"),
    (
        "status_help",
        "Danh sách chặn đang dùng, từng nguồn danh sách, máy chủ DNS phía trên và máy chủ này, đọc trực tiếp lúc mở trang.",
        "The serving blocklist, each list source, the upstream DNS servers and this server, read live when the page opens.",
    ),
    ("status_serving", "Danh sách đang dùng", "Serving list"),
    ("status_entries", "Tên miền", "Entries"),
    ("status_built", "Biên dịch lúc", "Compiled"),
    ("status_loaded", "Nạp lúc", "Loaded"),
    ("status_installs", "Lần cập nhật", "Updates installed"),
    ("status_version", "Phiên bản", "Version"),
    (
        "status_last_success",
        "Cập nhật thành công gần nhất",
        "Last successful update",
    ),
    ("status_last_check", "Kiểm tra gần nhất", "Last checked"),
    ("status_updates", "Lần cập nhật", "Updates"),
    (
        "status_rejected_lines",
        "Dòng không hợp lệ",
        "Invalid lines",
    ),
    (
        "status_refused",
        "Bản cập nhật bị từ chối",
        "Updates refused",
    ),
    ("status_none", "không có", "none"),
    ("status_never", "chưa bao giờ", "never"),
    ("status_last_error", "Lỗi gần nhất", "Last error"),
    (
        "status_upstream",
        "Máy chủ DNS phía trên",
        "Upstream servers",
    ),
    ("status_reachable", "đang trả lời", "answering"),
    ("status_unreachable", "không trả lời", "not answering"),
    ("status_answering", "đang trả lời", "answering"),
    ("status_failing", "đang lỗi", "failing"),
    ("status_not_asked", "chưa được hỏi", "not asked yet"),
    ("status_last_failure", "Lỗi gần nhất", "Last failure"),
    ("status_last_answer", "Trả lời gần nhất", "Last answer"),
    (
        "status_recent_failures",
        "Lỗi trong 5 phút",
        "Failures in 5 min",
    ),
    ("status_node", "Máy chủ này", "This server"),
    (
        "status_version_sw",
        "Phiên bản phần mềm",
        "Software version",
    ),
    ("status_uptime", "Đã chạy", "Up for"),
    ("status_node_id", "Mã máy chủ", "Node id"),
    ("status_profiles", "Hồ sơ", "Profiles"),
    (
        "status_queries",
        "Truy vấn từ lúc khởi động",
        "Queries since the start",
    ),
    ("status_q_received", "Đã nhận", "Received"),
    ("status_q_answered", "Đã trả lời", "Answered"),
    ("status_q_blocked", "Đã chặn", "Blocked"),
    (
        "status_q_servfail",
        "Lỗi phía trên (SERVFAIL)",
        "Upstream failed (SERVFAIL)",
    ),
    ("status_q_refused", "Bị từ chối", "Refused"),
    ("status_listeners", "Địa chỉ lắng nghe", "Listening on"),
    (
        "status_zone",
        "Giờ hiển thị theo giờ Việt Nam (UTC+7).",
        "Times are shown in Vietnam time (UTC+7).",
    ),
    ("guard_download", "tải về thất bại", "download failed"),
    ("guard_signature", "chữ ký sai", "bad signature"),
    ("guard_unreadable", "không đọc được", "unreadable"),
    (
        "guard_rejects",
        "quá nhiều dòng sai",
        "too many invalid lines",
    ),
    ("guard_shrink", "co lại bất thường", "shrank implausibly"),
    ("guard_compile", "biên dịch thất bại", "compile failed"),
    ("guard_other", "khác", "other"),
    ("unit_s", "giây", "s"),
    ("unit_m", "phút", "min"),
    ("unit_h", "giờ", "h"),
    ("unit_d", "ngày", "d"),
    ("ago", "trước", "ago"),
    ("audit_title", "Nhật ký thay đổi", "Audit log"),
    (
        "audit_help",
        "Ai đã thay đổi hồ sơ, thiết bị hay dải địa chỉ thuê bao nào, lúc nào; mới nhất trước.",
        "Who changed which profile, device or subscriber range, and when; newest first.",
    ),
    (
        "audit_accounts_none",
        "Thay đổi tài khoản (người dùng, vai trò) chưa được ghi nhật ký: kho tài khoản không lưu lịch sử.",
        "Account changes (users, roles) are not logged: the accounts store keeps no history.",
    ),
    ("audit_empty", "Chưa có thay đổi nào.", "No changes yet."),
    ("audit_details", "Trước và sau", "Before and after"),
    ("audit_before", "Trước", "Before"),
    ("audit_after", "Sau", "After"),
    ("audit_create", "tạo", "created"),
    ("audit_update", "sửa", "changed"),
    ("audit_delete", "xoá", "deleted"),
    ("audit_bulk", "nạp hàng loạt", "bulk load"),
    // A profile's own allow and deny lists.
    ("own_lists", "Danh sách riêng", "Own lists"),
    ("own_allow", "Luôn cho phép", "Always allowed"),
    (
        "own_allow_help",
        "Các tên miền này không bao giờ bị chặn cho hồ sơ này (ví dụ trang học tập bị chặn nhầm).",
        "These names are never blocked for this profile (e.g. a class site blocked by mistake).",
    ),
    ("own_deny", "Luôn chặn", "Always blocked"),
    (
        "own_deny_help",
        "Các tên miền này luôn bị chặn cho hồ sơ này, cùng các tên miền con của chúng.",
        "These names are always blocked for this profile, with the names under them.",
    ),
    ("own_empty", "Chưa có tên miền nào.", "No names yet."),
    ("domain_name", "Tên miền", "Domain name"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_translated_once() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len(), "a key appears twice");
        for (k, vi, en) in TEXTS {
            assert!(!vi.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(Lang::Vi.category("gambling"), "cờ bạc");
        assert_eq!(Lang::Vi.category("adult"), "người lớn");
        assert_eq!(Lang::En.t("login_title"), "Log in");
        assert_eq!(Lang::parse("EN"), Lang::En);
        assert_eq!(Lang::parse("fr"), Lang::Vi);
    }

    #[test]
    fn every_key_used_in_the_pages_exists() {
        // Every `.t("...")` in the console's sources names a key of the table.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/console");
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("i18n.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for part in text.split(".t(\"").skip(1) {
                        let key = part.split('"').next().unwrap();
                        assert!(
                            TEXTS.iter().any(|(k, _, _)| *k == key),
                            "{}: key {key:?} has no translation",
                            p.display()
                        );
                    }
                }
            }
        }
    }
}
