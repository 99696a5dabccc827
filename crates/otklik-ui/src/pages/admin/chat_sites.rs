//! Admin → Chat sites: where the shop's chat widget runs and how its chat behaves (origins,
//! greeting, colour, working hours, pre-chat questions, identity, team, mailbox), the embed
//! snippet to copy, and the identity secret with its rotation and an example of signing a
//! customer id on the shop's server. Admins only, like every admin page.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use otklik_app::chat::ChatSiteInput;
use otklik_domain::chat::{
    ChatSite, DayHours, FieldMode, MAX_ALLOWED_ORIGINS, PreChatForm, WorkingHours, normalize_origin,
};
use otklik_domain::ids::{ChatSiteId, MailboxId, TeamId};
use otklik_domain::permission::Action;

use super::{DoneQuery, FieldMap, Tab, back, done_message, submit, tabs, unprocessable};
use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::FieldErrors;
use crate::pages::ticket::Choice;
use crate::pages::{Frame, Pairs, html};
use crate::session::Staff;

/// The weekdays of the hours table, Monday first as the domain keeps them: (form field prefix,
/// label key).
const DAYS: [(&str, &str); 7] = [
    ("mon", "weekday-mon"),
    ("tue", "weekday-tue"),
    ("wed", "weekday-wed"),
    ("thu", "weekday-thu"),
    ("fri", "weekday-fri"),
    ("sat", "weekday-sat"),
    ("sun", "weekday-sun"),
];

/// Time zones offered in the field's suggestions (any IANA name may be typed).
const TIME_ZONES: &[&str] = &[
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    "Europe/Minsk",
    "Asia/Almaty",
    "UTC",
];

/// The pre-chat questions: (form field, label key).
const QUESTIONS: [(&str, &str); 3] = [
    ("prechat_name", "chat-site-ask-name"),
    ("prechat_email", "chat-site-ask-email"),
    ("prechat_order_number", "chat-site-ask-order"),
];

/// How refusals of the use case land on the form.
const SITE_FIELDS: &FieldMap = &[
    ("name", "name", "chat-site-name-invalid"),
    ("allowed_origins", "allowed_origins", ""),
    ("greeting", "greeting", ""),
    ("accent_colour", "accent_colour", "chat-site-colour-invalid"),
    (
        "working_hours.time_zone",
        "time_zone",
        "chat-site-time-zone-invalid",
    ),
    ("working_hours.days", "hours", "chat-site-day-invalid"),
    ("team_id", "team_id", "form-error-invalid"),
    ("mailbox_id", "mailbox_id", "form-error-invalid"),
];

/// One weekday of the hours table, as typed.
#[derive(Debug, Clone, Default)]
pub struct DayForm {
    pub key: &'static str,
    pub label: String,
    /// `HH:MM`, or empty.
    pub from: String,
    pub to: String,
    pub closed: bool,
}

/// The site form, as shown or as typed.
#[derive(Debug, Clone, Default)]
pub struct SiteForm {
    pub name: String,
    /// One origin per line.
    pub allowed_origins: String,
    pub greeting: String,
    pub accent_colour: String,
    pub time_zone: String,
    pub days: Vec<DayForm>,
    /// The modes of the pre-chat questions, in the order of [`QUESTIONS`].
    pub questions: [String; 3],
    pub require_identity: bool,
    pub team_id: String,
    pub mailbox_id: String,
    pub active: bool,
}

fn clock(minute: u16) -> String {
    // A day open "until midnight" closes at 24:00, which a time field writes as 00:00.
    let minute = minute % (24 * 60);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Minutes since midnight of `HH:MM` (seconds, which some browsers add, are ignored). As a
/// closing time, `00:00` and `24:00` mean midnight at the end of the day.
fn minutes(raw: &str, closing: bool) -> Option<u16> {
    let mut parts = raw.trim().split(':');
    let hours: u16 = parts.next()?.parse().ok()?;
    let minutes: u16 = parts.next()?.parse().ok()?;
    if minutes >= 60 {
        return None;
    }
    match (hours, minutes) {
        (0 | 24, 0) if closing => Some(24 * 60),
        (hours, minutes) if hours < 24 => Some(hours * 60 + minutes),
        _ => None,
    }
}

impl SiteForm {
    fn days(lang: Lang, hours: Option<&WorkingHours>) -> Vec<DayForm> {
        DAYS.iter()
            .enumerate()
            .map(|(index, (key, label))| {
                let day = hours.and_then(|hours| hours.days[index]);
                let around_the_clock = hours.is_none_or(WorkingHours::is_around_the_clock);
                DayForm {
                    key,
                    label: lang.t(label),
                    from: day.map(|day| clock(day.from_minute)).unwrap_or_default(),
                    to: day.map(|day| clock(day.to_minute)).unwrap_or_default(),
                    closed: day.is_none() && !around_the_clock,
                }
            })
            .collect()
    }

    /// A new site: open around the clock, name and e-mail asked but optional.
    fn blank(lang: Lang) -> SiteForm {
        let questions = PreChatForm::default();
        SiteForm {
            accent_colour: "#0b57d0".into(),
            time_zone: "Europe/Moscow".into(),
            days: Self::days(lang, None),
            questions: [
                questions.name.as_str().into(),
                questions.email.as_str().into(),
                questions.order_number.as_str().into(),
            ],
            active: true,
            ..SiteForm::default()
        }
    }

    fn of(site: &ChatSite, lang: Lang) -> SiteForm {
        SiteForm {
            name: site.name.clone(),
            allowed_origins: site.allowed_origins.join("\n"),
            greeting: site.greeting.clone(),
            accent_colour: site.accent_colour.clone(),
            time_zone: site.working_hours.time_zone.clone(),
            days: Self::days(lang, Some(&site.working_hours)),
            questions: [
                site.pre_chat.name.as_str().into(),
                site.pre_chat.email.as_str().into(),
                site.pre_chat.order_number.as_str().into(),
            ],
            require_identity: site.require_identity,
            team_id: site.team_id.map(|id| id.to_string()).unwrap_or_default(),
            mailbox_id: site.mailbox_id.map(|id| id.to_string()).unwrap_or_default(),
            active: site.active,
        }
    }

    fn read(pairs: &Pairs, lang: Lang) -> SiteForm {
        let text = |name: &str| pairs.get(name).to_owned();
        SiteForm {
            name: text("name"),
            allowed_origins: text("allowed_origins"),
            greeting: text("greeting"),
            accent_colour: text("accent_colour"),
            time_zone: pairs.get("time_zone").trim().to_owned(),
            days: DAYS
                .iter()
                .map(|(key, label)| DayForm {
                    key,
                    label: lang.t(label),
                    from: pairs.get(&format!("{key}_from")).trim().to_owned(),
                    to: pairs.get(&format!("{key}_to")).trim().to_owned(),
                    closed: pairs.get(&format!("{key}_closed")) == "1",
                })
                .collect(),
            questions: QUESTIONS.map(|(name, _)| text(name)),
            require_identity: pairs.get("require_identity") == "1",
            team_id: text("team_id"),
            mailbox_id: text("mailbox_id"),
            active: pairs.get("active") == "1",
        }
    }

    /// The working hours of the table: none filled in means around the clock; otherwise a
    /// day without hours is closed, and at least one day must be open.
    fn hours(&self, lang: Lang, errors: &mut FieldErrors) -> WorkingHours {
        let untouched = self
            .days
            .iter()
            .all(|day| day.from.is_empty() && day.to.is_empty() && !day.closed);
        let time_zone = if self.time_zone.is_empty() && untouched {
            "UTC".to_owned()
        } else {
            self.time_zone.clone()
        };
        let mut hours = WorkingHours {
            time_zone,
            days: [None; 7],
        };
        if untouched {
            return hours;
        }
        for (index, day) in self.days.iter().enumerate() {
            if day.closed || (day.from.is_empty() && day.to.is_empty()) {
                continue;
            }
            match (minutes(&day.from, false), minutes(&day.to, true)) {
                (Some(from_minute), Some(to_minute)) if from_minute < to_minute => {
                    hours.days[index] = Some(DayHours {
                        from_minute,
                        to_minute,
                    });
                }
                _ => errors.add(day.key, lang.t("chat-site-day-invalid")),
            }
        }
        if errors.is_empty() && hours.is_around_the_clock() {
            errors.add("hours", lang.t("chat-site-hours-none-open"));
        }
        hours
    }

    /// The use case's input, and what the form itself can tell is wrong.
    fn input(&self, lang: Lang) -> (ChatSiteInput, FieldErrors) {
        let mut errors = FieldErrors::default();
        let origins: Vec<String> = self
            .allowed_origins
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = origins
            .iter()
            .find(|origin| normalize_origin(origin).is_err())
        {
            errors.add(
                "allowed_origins",
                lang.with("chat-site-origin-invalid", bad),
            );
        } else if origins.is_empty() {
            errors.add("allowed_origins", lang.t("chat-site-origins-required"));
        } else if origins.len() > MAX_ALLOWED_ORIGINS {
            errors.add("allowed_origins", lang.t("chat-site-origins-too-many"));
        }
        let working_hours = self.hours(lang, &mut errors);
        let mut modes = [FieldMode::Optional; 3];
        for (index, (name, _)) in QUESTIONS.iter().enumerate() {
            match self.questions[index].parse::<FieldMode>() {
                Ok(mode) => modes[index] = mode,
                Err(_) => errors.add(name, lang.t("form-error-invalid")),
            }
        }
        let team_id = match self.team_id.as_str() {
            "" => None,
            raw => raw.parse::<TeamId>().map_or_else(
                |_| {
                    errors.add("team_id", lang.t("form-error-invalid"));
                    None
                },
                Some,
            ),
        };
        let mailbox_id = match self.mailbox_id.as_str() {
            "" => None,
            raw => raw.parse::<MailboxId>().map_or_else(
                |_| {
                    errors.add("mailbox_id", lang.t("form-error-invalid"));
                    None
                },
                Some,
            ),
        };
        let input = ChatSiteInput {
            name: self.name.clone(),
            allowed_origins: origins,
            greeting: self.greeting.clone(),
            accent_colour: self.accent_colour.clone(),
            working_hours,
            pre_chat: PreChatForm {
                name: modes[0],
                email: modes[1],
                order_number: modes[2],
            },
            require_identity: self.require_identity,
            team_id,
            mailbox_id,
            active: self.active,
        };
        (input, errors)
    }
}

/// A pre-chat question with its choices.
#[derive(Debug, Clone)]
pub struct Question {
    pub name: &'static str,
    pub label: String,
    pub modes: Vec<Choice>,
}

/// What the edit page shows of a saved site besides its form.
#[derive(Debug, Clone)]
pub struct SavedSite {
    pub id: String,
    /// The tag to paste into the shop's pages.
    pub snippet: String,
    pub identity_secret: String,
}

#[derive(Template)]
#[template(path = "admin_chat_site.html")]
struct SiteTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    form: SiteForm,
    errors: FieldErrors,
    questions: Vec<Question>,
    teams: Vec<Choice>,
    mailboxes: Vec<Choice>,
    time_zones: &'static [&'static str],
    saved: Option<SavedSite>,
    done: Option<String>,
}

/// A site in the list.
#[derive(Debug, Clone)]
pub struct SiteLine {
    pub id: String,
    pub name: String,
    pub origins: String,
    pub team: Option<String>,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "admin_chat_sites.html")]
struct SitesTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    sites: Vec<SiteLine>,
    done: Option<String>,
}

/// Chat sites are channels: admins only.
fn require_channels(staff: &Staff) -> Result<(), UiError> {
    staff
        .principal
        .require(Action::ManageChannels)
        .map_err(|_| UiError::Forbidden)
}

fn parse_site_id(raw: &str) -> Result<ChatSiteId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

/// Where the shop loads the widget from: the public address of the settings, else the origin
/// this page was requested at (the admin is looking at it, so it reaches this server).
async fn public_origin(state: &UiState, headers: &HeaderMap) -> String {
    if let Ok(settings) = state.app.instance_settings().await
        && let Some(url) = settings.public_base_url.filter(|url| !url.is_empty())
    {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|scheme| matches!(*scheme, "http" | "https"));
    let scheme = forwarded.unwrap_or(if state.config.secure_cookies {
        "https"
    } else {
        "http"
    });
    format!("{scheme}://{host}")
}

fn choices(
    options: impl IntoIterator<Item = (String, String)>,
    none_label: String,
    selected: &str,
) -> Vec<Choice> {
    std::iter::once((String::new(), none_label))
        .chain(options)
        .map(|(value, label)| Choice {
            selected: value == selected,
            value,
            label,
        })
        .collect()
}

async fn site_page(
    state: &UiState,
    staff: &Staff,
    form: SiteForm,
    errors: FieldErrors,
    saved: Option<SavedSite>,
    done: Option<String>,
) -> Result<Response, UiError> {
    let app = &state.app;
    let (teams, mailboxes) = tokio::join!(
        app.list_teams(&staff.principal),
        app.list_mailboxes(&staff.principal)
    );
    let page = Frame::of(staff);
    let teams = choices(
        teams?
            .into_iter()
            .map(|team| (team.id.to_string(), team.name)),
        page.t("chat-site-any-team"),
        &form.team_id,
    );
    let mailboxes = choices(
        mailboxes?.into_iter().map(|mailbox| {
            (
                mailbox.id.to_string(),
                format!("{} <{}>", mailbox.name, mailbox.address),
            )
        }),
        page.t("chat-site-any-mailbox"),
        &form.mailbox_id,
    );
    let questions = QUESTIONS
        .iter()
        .enumerate()
        .map(|(index, (name, label))| Question {
            name,
            label: page.t(label),
            modes: FieldMode::ALL
                .iter()
                .map(|mode| Choice {
                    value: mode.as_str().into(),
                    label: page.label("chat-field", mode.as_str()),
                    selected: form.questions[index] == mode.as_str(),
                })
                .collect(),
        })
        .collect();
    html(&SiteTemplate {
        tabs: tabs(&page, "chat-sites"),
        form,
        errors,
        questions,
        teams,
        mailboxes,
        time_zones: TIME_ZONES,
        saved,
        done,
        page,
    })
}

/// `GET /admin/chat-sites`.
pub async fn list(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let (sites, teams) = tokio::join!(
        state.app.list_chat_sites(&staff.principal),
        state.app.list_teams(&staff.principal)
    );
    let teams = teams?;
    let page = Frame::of(&staff);
    let sites = sites?
        .into_iter()
        .map(|site| SiteLine {
            id: site.id.to_string(),
            name: site.name,
            origins: site.allowed_origins.join(", "),
            team: site.team_id.and_then(|id| {
                teams
                    .iter()
                    .find(|team| team.id == id)
                    .map(|team| team.name.clone())
            }),
            active: site.active,
        })
        .collect();
    html(&SitesTemplate {
        tabs: tabs(&page, "chat-sites"),
        sites,
        done: done_message(staff.lang, query.done.as_deref()),
        page,
    })
}

/// `GET /admin/chat-sites/new`.
pub async fn new_form(State(state): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let form = SiteForm::blank(staff.lang);
    site_page(&state, &staff, form, FieldErrors::default(), None, None).await
}

/// `POST /admin/chat-sites`: creates the site and shows its snippet; refused, the form comes
/// back as typed with the fields marked.
pub async fn create(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let lang = staff.lang;
    let form = SiteForm::read(&Pairs::parse(&body), lang);
    let (input, errors) = form.input(lang);
    let save = state.app.create_chat_site(&staff.principal, input);
    match submit(lang, errors, SITE_FIELDS, save).await? {
        Ok(site) => Ok(back(&format!("/admin/chat-sites/{}", site.id), "created")),
        Err(errors) => Ok(unprocessable(
            site_page(&state, &staff, form, errors, None, None).await?,
        )),
    }
}

async fn saved_site(state: &UiState, headers: &HeaderMap, site: &ChatSite) -> SavedSite {
    let origin = public_origin(state, headers).await;
    SavedSite {
        id: site.id.to_string(),
        snippet: format!(
            "<script src=\"{origin}/widget.js\" data-site=\"{}\" async></script>",
            site.id
        ),
        identity_secret: site.identity_secret.clone(),
    }
}

/// `GET /admin/chat-sites/{id}`: the form, the snippet and the identity secret.
pub async fn edit_form(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let site = state
        .app
        .get_chat_site(&staff.principal, parse_site_id(&id)?)
        .await?;
    let saved = saved_site(&state, &headers, &site).await;
    let done = done_message(staff.lang, query.done.as_deref());
    let form = SiteForm::of(&site, staff.lang);
    site_page(
        &state,
        &staff,
        form,
        FieldErrors::default(),
        Some(saved),
        done,
    )
    .await
}

/// `POST /admin/chat-sites/{id}`.
pub async fn update(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let id = parse_site_id(&id)?;
    // Unknown ids are "not found" before anything is checked.
    let site = state.app.get_chat_site(&staff.principal, id).await?;
    let lang = staff.lang;
    let form = SiteForm::read(&Pairs::parse(&body), lang);
    let (input, errors) = form.input(lang);
    let save = state.app.update_chat_site(&staff.principal, id, input);
    match submit(lang, errors, SITE_FIELDS, save).await? {
        Ok(site) => Ok(back(&format!("/admin/chat-sites/{}", site.id), "saved")),
        Err(errors) => {
            let saved = saved_site(&state, &headers, &site).await;
            Ok(unprocessable(
                site_page(&state, &staff, form, errors, Some(saved), None).await?,
            ))
        }
    }
}

/// `POST /admin/chat-sites/{id}/rotate-secret`: a new identity secret; the old one stops
/// verifying at once (the page asks to confirm first).
pub async fn rotate_secret(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_channels(&staff)?;
    let site = state
        .app
        .rotate_chat_site_secret(&staff.principal, parse_site_id(&id)?)
        .await?;
    Ok(back(&format!("/admin/chat-sites/{}", site.id), "rotated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_read_as_minutes_with_midnight_closing_the_day() {
        assert_eq!(minutes("09:30", false), Some(570));
        assert_eq!(minutes("09:30:00", false), Some(570));
        assert_eq!(minutes("00:00", true), Some(1440));
        assert_eq!(minutes("24:00", true), Some(1440));
        assert_eq!(minutes("24:00", false), None);
        assert_eq!(minutes("9:75", false), None);
        assert_eq!(minutes("", false), None);
        assert_eq!(clock(1440), "00:00");
        assert_eq!(clock(570), "09:30");
    }

    #[test]
    fn an_untouched_hours_table_is_open_around_the_clock_and_a_closed_week_is_refused() {
        let mut form = SiteForm::blank(Lang::En);
        let mut errors = FieldErrors::default();
        assert!(form.hours(Lang::En, &mut errors).is_around_the_clock());
        assert!(errors.is_empty());
        for day in &mut form.days {
            day.closed = true;
        }
        form.hours(Lang::En, &mut errors);
        assert!(errors.get("hours").is_some());
        let mut errors = FieldErrors::default();
        form.days[0].closed = false;
        form.days[0].from = "10:00".into();
        form.days[0].to = "09:00".into();
        form.hours(Lang::En, &mut errors);
        assert!(errors.get("mon").is_some());
    }
}
