//! How far a search walks and how it asks the index: arithmetic on the counts a search has
//! seen (its window of the newest documents, what each round found), with no I/O, so every
//! decision is tested on its own.

use super::RANKED_MATCHES;
use crate::visibility_terms;

/// The era (V26) the rounds of a search begin with, and the share of that era's tickets they
/// may find there: the newest era is still filling up, and the window read the newest part of
/// it. Counted as a whole era, a first round of one era at 100,000 tickets read the last 677
/// tickets of era 6, found a tenth of what it expected, and the next round fetched 6,300
/// matches of six eras for 388 wanted (8.3 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RoundsStart {
    pub(super) era: i64,
    /// Of the era's tickets, the share numbered up to the ticket the rounds begin at.
    pub(super) share: f64,
}

impl RoundsStart {
    pub(super) fn at_number(number: i64) -> Self {
        let era_tickets = visibility_terms::ERA_TICKETS;
        RoundsStart {
            era: visibility_terms::era_of(number),
            share: (number.rem_euclid(era_tickets) + 1) as f64 / era_tickets as f64,
        }
    }

    /// The eras the rounds may read, the first counted by its share.
    pub(super) fn eras(&self) -> f64 {
        self.era as f64 + self.share
    }
}

/// The most eras one round of [`EraRounds`] names. GIN steps through the postings of every era
/// a query names at once, at a cost that grows with the eras named, not only with their
/// tickets: for an agent's «refunding» at a million tickets, 2 eras took 1.1 ms, 4 took 3.7, 8
/// took 9.7 and 32 took 72, where the whole word took 14.
pub(super) const ERAS_PER_ROUND: i64 = 2;

/// The most spellings (a token in an era) one round of era words names. GIN looks each up and
/// tests every posting it steps through against all of them.
pub(super) const MOST_SPELLINGS_A_ROUND: i64 = 64;

/// The postings of the words the rounds of era words may read, by the window's share of
/// matching documents, before the rest is asked of the documents, where GIN steps through the
/// postings of the query's rarest term. For an agent's «refunding» + solved the rounds read
/// ~25,000 (10 ms) where the rest read all 72,891 (27 ms); for «1» among open tickets, 53 eras
/// of «1» were 350,000 postings (114 ms), where the rest stepped through the 12,700 open
/// tickets (4 ms).
pub(super) const MOST_WORD_POSTINGS_IN_ROUNDS: f64 = 65_536.0;

/// The most eras the first round of era words names ([`EraRounds::of_words`]).
pub(super) const MOST_ERAS_A_FIRST_WORD_ROUND: i64 = 4;

/// The most eras the rounds of a search cover before it asks for all the older matches at once;
/// also what the matches wanted must fit in, by the window's count, for the rounds to begin.
pub(super) const MOST_ERAS_IN_ROUNDS: i64 = 16;

/// The rounds in which a search asks the index for the matches of a few eras (V26) at a time,
/// newest first, instead of all the matches of its words at once: the index returns matches in
/// the order of their rows, so to keep the newest it fetched every one and sorted them, and it
/// stepped through every posting of the words. The rounds begin only when the window's count
/// says a page of matches should lie within [`MOST_ERAS_IN_ROUNDS`] eras and within half of
/// those there are (rounds that read every era cost more than asking for all the matches at
/// once: an agent's «refunding» at 100,000 tickets took 4 rounds of 2 ms, where all at once
/// took 2.2); each names
/// [`ERAS_PER_ROUND`] eras, older and older, and once they cover that many without a page, or
/// two rounds in a row find nothing ([`EraRounds::found`]), one last round asks for every
/// match older than those found ([`EraRound::Rest`]).
///
/// Eras follow ticket numbers and the search orders by ticket id. Both follow creation, but a
/// number is drawn when the ticket is written, after its id: two tickets created at the same
/// moment on two nodes may stand in one order by id and the other by number, and at the border
/// of two eras the older by id can be in the newer era. The search then ranks one match in
/// place of one barely newer, as if it had come a moment earlier.
///
/// Rounds of era words (V30, [`EraRounds::of_words`]) cost what the words' postings in those
/// eras cost, so they may cover every era: each round names as many eras as the rate found so
/// far says the matches still wanted need, and twice as many as the last after a round that
/// found none. They read no more postings than the rest at once would step through; past that
/// the rounds of era terms and their rules take over, and two empty rounds end them too.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EraRounds {
    /// The newest era of the next round, `None` when only the rest is left.
    pub(super) newest: Option<i64>,
    /// Eras the rounds may still cover.
    pub(super) budget: i64,
    /// Eras the next round names.
    pub(super) per_round: i64,
    /// For rounds of era words: what they may still read.
    pub(super) of_words: Option<WordRounds>,
    /// Whether the rounds are over.
    pub(super) done: bool,
    /// Rounds in a row that found no match.
    pub(super) empty_rounds: u32,
    /// Matches wanted, found so far, and eras covered so far (the first by its share).
    pub(super) wanted: i64,
    pub(super) found: i64,
    pub(super) covered: f64,
    /// The share of the first era's tickets the first round may find ([`RoundsStart`]), until
    /// that round is named.
    pub(super) first_share: Option<f64>,
}

/// What the rounds of era words (V30) of a search would read, and may.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RoundCosts {
    /// Postings of the words an era holds.
    pub(super) postings_per_era: f64,
    /// Postings of the words the rounds may read in all.
    pub(super) postings_budget: f64,
    /// Whether the era words name fewer teams than there are (V32: an agent's), so that they
    /// hold fewer postings of the words than the documents.
    pub(super) fewer_teams: bool,
}

impl RoundCosts {
    /// These costs for era words that name only some teams (`fewer_teams`, V32), of
    /// `share_of_tickets` of the tickets: a round steps through the postings of the words in
    /// those teams' tickets only. An agent of Delivery and VIP (41% of the tickets) searching
    /// «1» among normal-priority tickets: counted for every team, the rounds could afford 10
    /// of the 16 eras the matches lay in and left them to the documents' index, which stepped
    /// through all 183,845 postings of «1» (41 ms).
    pub(super) fn of_teams(self, fewer_teams: bool, share_of_tickets: f64) -> Self {
        let share = if fewer_teams {
            share_of_tickets.clamp(0.0, 1.0)
        } else {
            1.0
        };
        RoundCosts {
            postings_per_era: self.postings_per_era * share,
            fewer_teams,
            ..self
        }
    }
}

/// What rounds of era words (V30) may read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WordRounds {
    /// Postings of the words an era holds, by the window.
    pub(super) postings_per_era: f64,
    /// Postings the rounds may still read ([`RoundCosts::postings_budget`]).
    pub(super) postings_left: f64,
    /// The most eras a round names ([`MOST_SPELLINGS_A_ROUND`] over the words' tokens).
    pub(super) most_eras: i64,
}

impl WordRounds {
    /// The most eras the postings left can pay for.
    pub(super) fn affordable_eras(&self) -> i64 {
        (self.postings_left / self.postings_per_era.max(1.0)).floor() as i64
    }
}

/// The eras of one round.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum EraRound {
    /// The eras `oldest..=newest`, asked of the era words (V30) when `of_words`, else of the
    /// documents' era terms (V26).
    Range {
        oldest: i64,
        newest: i64,
        of_words: bool,
    },
    /// Every match older than those found: the caller bounds it by ticket id.
    Rest,
}

impl EraRound {
    /// The round's `tsquery` (input syntax) with the other terms a match must carry, `visible`.
    pub(super) fn with(&self, visible: Option<&str>) -> Option<String> {
        let EraRound::Range { oldest, newest, .. } = self else {
            return visible.map(str::to_owned);
        };
        let eras = format!("({})", visibility_terms::era_query(*oldest, *newest));
        Some(match visible {
            Some(visible) => format!("({visible}) & {eras}"),
            None => eras,
        })
    }
}

impl EraRounds {
    /// Rounds from `start` down, expecting `per_era` matches an era (0: unknown), to find
    /// `wanted` of them.
    pub(super) fn new(start: RoundsStart, per_era: f64, wanted: i64) -> Self {
        let eras_needed = wanted as f64 / per_era;
        let fits = per_era > 0.0
            && eras_needed <= MOST_ERAS_IN_ROUNDS as f64
            && eras_needed <= start.eras() / 2.0;
        EraRounds {
            newest: fits.then_some(start.era),
            budget: MOST_ERAS_IN_ROUNDS,
            per_round: ERAS_PER_ROUND,
            of_words: None,
            done: false,
            empty_rounds: 0,
            wanted,
            found: 0,
            covered: 0.0,
            first_share: Some(start.share),
        }
    }

    /// Rounds of era words (V30) from `start` down to era 0, expecting `per_era` matches
    /// an era (0: unknown), to find `wanted` of them. The first names as many eras as the
    /// expectation says (or [`ERAS_PER_ROUND`] without one), up to
    /// [`MOST_ERAS_A_FIRST_WORD_ROUND`]:
    /// the newest era is the window's, and mostly read already. Not more: an expectation from
    /// the two matches an agent saw in the window asked 16 eras at once, and fetched twice the
    /// matches wanted (7.8 ms, where rounds of 2 eras took 4–5).
    ///
    /// The rounds read `costs.postings_per_era` postings of the words an era and at most
    /// `costs.postings_budget` in all, `most_eras` eras a round, and leave the rest to one
    /// query of the documents when the rate found says the matches still wanted lie past what
    /// they may read.
    pub(super) fn of_words(
        start: RoundsStart,
        per_era: f64,
        wanted: i64,
        costs: RoundCosts,
        most_eras: i64,
    ) -> Self {
        // A quarter more than the expectation, as later rounds ask; one era when it holds that
        // many (a supervisor's «refunding»: two eras fetched 2,400 matches for 425 wanted),
        // counting the first era by its share.
        let needed = if per_era > 0.0 {
            let past_first = wanted as f64 * 1.25 / per_era - start.share;
            1 + past_first.max(0.0).ceil() as i64
        } else {
            ERAS_PER_ROUND
        };
        let words = WordRounds {
            postings_per_era: costs.postings_per_era,
            postings_left: costs.postings_budget,
            most_eras: most_eras.max(1),
        };
        let first = needed
            .clamp(1, MOST_ERAS_A_FIRST_WORD_ROUND)
            .min(words.most_eras)
            .min(words.affordable_eras());
        // Fewer matches expected in all eras than a page: one query for all of them. Of the
        // era words when they hold fewer postings than the documents (an agent's teams, V32)
        // and name every era in one round: an agent's «refunding» at 100,000 tickets, 7 eras of
        // 3 teams, where the documents' index stepped through every posting of «refund»
        // (2.6 ms). Else the documents' rules decide.
        let few = per_era > 0.0 && wanted as f64 / per_era > start.eras();
        let every_era = start.era.saturating_add(1);
        let per_round = if few && costs.fewer_teams && every_era <= words.most_eras {
            every_era
        } else if first == 0 || few {
            // No postings to read, or few matches but of every team.
            return EraRounds::new(start, per_era, wanted);
        } else {
            first
        };
        EraRounds {
            newest: Some(start.era),
            budget: every_era,
            per_round,
            of_words: Some(words),
            done: false,
            empty_rounds: 0,
            wanted,
            found: 0,
            covered: 0.0,
            first_share: Some(start.share),
        }
    }

    /// The last round found `matches`. The next round is the rest when two rounds in a row
    /// found none (the expectation was wrong: the planner's, from words that seldom meet), or
    /// when, at the rate found so far, the matches still wanted lie past the eras the rounds
    /// may still cover (solved tickets are few among the newest: an agent's «refunding» among
    /// them took 8 rounds, then the rest, 90 ms).
    pub(super) fn found(&mut self, matches: usize) {
        let matches = i64::try_from(matches).unwrap_or(i64::MAX);
        self.found = self.found.saturating_add(matches);
        self.empty_rounds = if matches == 0 {
            self.empty_rounds + 1
        } else {
            0
        };
        let still_wanted = (self.wanted - self.found).max(0) as f64;
        let rate = self.found as f64 / self.covered.max(f64::MIN_POSITIVE);
        // Two rounds in a row without a match: the words and the other terms seldom meet, and
        // the documents' index steps through the rarest of them for all the matches at once
        // (a supervisor's «refunding» among tickets tagged «доставка», none of which has it:
        // rounds of era words doubling to 30 eras read 26 ms before the rest took 7).
        if self.empty_rounds >= 2 {
            self.newest = None;
            return;
        }
        if let Some(words) = &self.of_words {
            let affordable = words.affordable_eras();
            // A quarter more than the rate says, so one more round is seldom needed.
            let needed = if rate > 0.0 {
                (still_wanted / rate * 1.25).ceil() as i64
            } else {
                self.per_round.saturating_mul(2)
            };
            let within_reach = rate == 0.0 || (still_wanted / rate).ceil() as i64 <= affordable;
            if within_reach && affordable > 0 {
                self.per_round = needed.clamp(1, words.most_eras).min(affordable);
                return;
            }
            // The rules of the documents' rounds decide from here, with the rate found; after
            // rounds that found nothing, the rest at once (an agent's «refunding» among
            // low-priority tickets: 4 rounds of era words and 2 of the documents found nothing
            // in 33 ms before the rest found the few there are).
            self.leave_words();
            self.empty_rounds = 0;
            if self.found == 0 {
                self.newest = None;
                return;
            }
        }
        let out_of_reach = self.found > 0 && still_wanted / rate > self.budget as f64;
        if out_of_reach {
            self.newest = None;
        }
    }

    pub(super) fn next_round(&mut self) -> Option<EraRound> {
        if self.done {
            return None;
        }
        let Some(newest) = self.newest.filter(|_| self.budget > 0) else {
            self.done = true;
            return Some(EraRound::Rest);
        };
        let eras = self.per_round.min(self.budget);
        let oldest = newest.saturating_sub(eras - 1).max(0);
        self.budget -= eras;
        let covered = (newest - oldest) as f64 + self.first_share.take().unwrap_or(1.0);
        if let Some(words) = &mut self.of_words {
            words.postings_left -= covered * words.postings_per_era;
        }
        self.covered += covered;
        self.newest = (oldest > 0).then(|| oldest - 1);
        // Past era 0 there is nothing older.
        self.done = oldest == 0;
        Some(EraRound::Range {
            oldest,
            newest,
            of_words: self.of_words.is_some(),
        })
    }

    /// Leaves the era words for the documents' era terms, whose rounds cost what their eras'
    /// documents cost, whatever the words: the rounds of era words may read no more postings,
    /// and asking the documents for the rest at once would fetch every match of a common word
    /// and a common filter («заказ» among tickets of no team: 90 ms, where rounds of two eras
    /// took 25).
    pub(super) fn leave_words(&mut self) {
        self.of_words = None;
        self.per_round = ERAS_PER_ROUND;
        self.budget = self.budget.min(MOST_ERAS_IN_ROUNDS);
    }
}

/// What an agent's search saw in its window of the newest documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WindowCounts {
    /// Documents tried.
    pub(super) tried: i64,
    /// Of which matched the words.
    pub(super) word_matches: i64,
    /// Of which the agent may also see.
    pub(super) visible_matches: i64,
    /// About how many documents there are in all (the planner's statistics).
    pub(super) documents: f64,
}

impl WindowCounts {
    /// About how many matches the agent may see an era holds, if the older documents are like
    /// the window's.
    pub(super) fn visible_per_era(&self) -> f64 {
        self.visible_matches as f64 / self.tried.max(1) as f64
            * visibility_terms::ERA_TICKETS as f64
    }

    /// Relative costs, in documents walked, of what the index does per match it returns, as
    /// measured on a million tickets: reading a posting of the word (a fifth of a document
    /// tried, counted as a third to allow for the terms of who may see it) and fetching a
    /// visible match's row (one and a half).
    const POSTING_COST: f64 = 0.3;
    const FETCH_COST: f64 = 1.5;

    /// Whether walking on past the window should cost less than asking the index for the
    /// older visible matches, if the older documents are like the window's.
    ///
    /// The index reads whole eras ([`EraRounds`]): those the walk would cross when they are few
    /// enough for the rounds, else every older document's postings at once. Weighed against
    /// every older posting, as before the eras, a supervisor's «refunding» (one document in
    /// fourteen) walked 7,300 documents in 6.7 ms where one era of the index took 3.
    pub(super) fn keep_walking(&self) -> bool {
        if self.visible_matches == 0 {
            return false;
        }
        let tried = self.tried.max(1) as f64;
        let rest = (self.documents - tried).max(0.0);
        let visible_density = self.visible_matches as f64 / tried;
        // No walk goes past the oldest document.
        let walk =
            ((RANKED_MATCHES - self.visible_matches).max(0) as f64 / visible_density).min(rest);
        let era = visibility_terms::ERA_TICKETS as f64;
        let eras_read = (walk / era).ceil().max(1.0);
        let read = if eras_read <= MOST_ERAS_IN_ROUNDS as f64 {
            (eras_read * era).min(rest)
        } else {
            rest
        };
        let index = read
            * (self.word_matches as f64 / tried * Self::POSTING_COST
                + visible_density * Self::FETCH_COST);
        walk <= index
    }

    /// Whether the planner's `estimate` of all the matches agrees with the window's count, as
    /// far as the window can tell: at most twice as many an era. More, and the older documents
    /// are unlike the newest.
    pub(super) fn borne_out(&self, estimate: f64) -> bool {
        let per_era = self.visible_per_era();
        let eras = (self.documents / visibility_terms::ERA_TICKETS as f64).max(1.0);
        per_era > 0.0 && estimate / eras <= 2.0 * per_era
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn rounds(mut rounds: EraRounds) -> Vec<EraRound> {
        std::iter::from_fn(|| rounds.next_round()).collect()
    }

    /// The costs of rounds of era words with `postings_per_era`, that may read as much as
    /// the most.
    pub(in crate::search) fn costs(postings_per_era: f64) -> RoundCosts {
        RoundCosts {
            postings_per_era,
            postings_budget: MOST_WORD_POSTINGS_IN_ROUNDS,
            fewer_teams: false,
        }
    }

    #[test]
    fn few_matches_of_fewer_teams_than_there_are_are_asked_of_the_era_words_at_once() {
        // An agent's «refunding» at 100,000 tickets: 70 visible matches an era, 480 wanted,
        // and the window read the newest tenth of era 6.
        let start = RoundsStart { era: 6, share: 0.1 };
        let agents = RoundCosts {
            fewer_teams: true,
            ..costs(1200.0)
        };
        let mut rounds = EraRounds::of_words(start, 70.0, 480, agents, 21);
        assert_eq!(rounds.next_round(), Some(words(0, 6)));
        rounds.found(300);
        assert_eq!(rounds.next_round(), None, "nothing is older than era 0");
        // Seven eras but at most five a round: the documents' rules.
        let mut rounds = EraRounds::of_words(start, 70.0, 480, agents, 5);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // Every team's words: as many postings as the documents hold, in more terms.
        let mut rounds = EraRounds::of_words(start, 70.0, 480, costs(1200.0), 21);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
    }

    /// Rounds that begin with the whole of `era`.
    pub(in crate::search) fn full(era: i64) -> RoundsStart {
        RoundsStart { era, share: 1.0 }
    }

    fn range(oldest: i64, newest: i64) -> EraRound {
        EraRound::Range {
            oldest,
            newest,
            of_words: false,
        }
    }

    fn words(oldest: i64, newest: i64) -> EraRound {
        EraRound::Range {
            oldest,
            newest,
            of_words: true,
        }
    }

    #[test]
    fn era_rounds_name_every_era_once_newest_first_then_the_rest() {
        // 40 matches an era: a page should lie within 13 eras, so the rounds begin; after 16
        // eras without a page, the rest.
        let mut expected: Vec<EraRound> = (0..8)
            .map(|round| range(199 - 2 * round, 200 - 2 * round))
            .collect();
        expected.push(EraRound::Rest);
        assert_eq!(rounds(EraRounds::new(full(200), 40.0, 500)), expected);
    }

    #[test]
    fn a_page_the_window_says_lies_past_the_rounds_is_asked_for_at_once() {
        assert_eq!(
            rounds(EraRounds::new(full(200), 1.0, 500)),
            vec![EraRound::Rest]
        );
        // No match in the window: nothing to go by.
        assert_eq!(
            rounds(EraRounds::new(full(200), 0.0, 500)),
            vec![EraRound::Rest]
        );
    }

    #[test]
    fn two_rounds_in_a_row_that_find_nothing_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(range(197, 198)));
        rounds.found(300);
        assert_eq!(rounds.next_round(), Some(range(195, 196)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(range(193, 194)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn rounds_that_find_too_few_to_reach_a_page_in_time_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        // 30 an era: 470 more need 16 eras, 14 are left.
        rounds.found(60);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        // 40 an era: 420 more need 11 eras.
        rounds.found(80);
        assert_eq!(rounds.next_round(), Some(range(197, 198)));
    }

    #[test]
    fn word_rounds_are_sized_by_the_rate_found() {
        // An agent's «refunding» + solved: 1,200 postings of «refund» an era. The window saw
        // as many visible matches an era as a page needs, and a quarter more: one era.
        let mut rounds = EraRounds::of_words(full(60), 1200.0, 425, costs(1200.0), 64);
        assert_eq!(rounds.next_round(), Some(words(60, 60)));
        rounds.found(47);
        // 378 still wanted at 47 an era: 9 eras, and a quarter more.
        assert_eq!(rounds.next_round(), Some(words(49, 59)));
        rounds.found(0);
        // At 2 an era the rest lies past the postings the rounds may still read, and past
        // the 16 eras rounds of the documents may cover.
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn word_rounds_double_after_a_round_that_finds_nothing_and_start_with_what_a_page_needs() {
        let mut rounds = EraRounds::of_words(full(200), 0.0, 500, costs(100.0), 64);
        assert_eq!(rounds.next_round(), Some(words(199, 200)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(words(195, 198)));
        rounds.found(30);
        // 470 more at 5 an era: 94 eras, and a quarter more, 64 at most.
        assert_eq!(rounds.next_round(), Some(words(131, 194)));
        rounds.found(0);
        rounds.found(0);
        assert_eq!(
            rounds.next_round(),
            Some(EraRound::Rest),
            "two empty rounds"
        );
        // Ten matches an era expected: a page of 500 needs 50 eras, but the first round names
        // 4 of them, and the next as many as the rate found says, 64 at most.
        let mut rounds = EraRounds::of_words(full(200), 10.0, 500, costs(100.0), 64);
        assert_eq!(rounds.next_round(), Some(words(197, 200)));
        rounds.found(4);
        assert_eq!(rounds.next_round(), Some(words(133, 196)));
        // A prefix of 8 tokens: 8 eras at most.
        let mut rounds = EraRounds::of_words(full(200), 10.0, 500, costs(100.0), 8);
        assert_eq!(rounds.next_round(), Some(words(197, 200)));
        rounds.found(4);
        assert_eq!(rounds.next_round(), Some(words(189, 196)));
    }

    #[test]
    fn a_common_word_with_a_rare_filter_leaves_the_rest_to_the_documents() {
        // «1» among open tickets: 6,500 postings of «1» an era, open tickets mostly new.
        let mut rounds = EraRounds::of_words(full(60), 200.0, 500, costs(6500.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
        rounds.found(43);
        // 457 more at 11 an era is 43 eras, 277,000 postings, and past 16 eras: the
        // documents' index steps through the open tickets for the rest.
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // A word in every document: the first round still reads 4 eras at most.
        let mut rounds = EraRounds::of_words(full(60), 100.0, 500, costs(16_384.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
    }

    #[test]
    fn word_rounds_read_no_more_postings_than_the_rest_would_step_through() {
        // An agent's «refunding» among open tickets: the planner expects 4,500 of them the
        // agent may see, fewer than four eras' postings of «refund».
        let open = RoundCosts {
            postings_per_era: 1200.0,
            postings_budget: 4500.0,
            fewer_teams: false,
        };
        let mut rounds = EraRounds::of_words(full(60), 100.0, 500, open, 64);
        assert_eq!(rounds.next_round(), Some(words(58, 60)));
        rounds.found(10);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn word_rounds_that_find_nothing_they_may_pay_for_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::of_words(full(60), 0.0, 500, costs(20_000.0), 64);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        rounds.found(0);
        // 65,536 postings paid for 3 eras; 25,536 are left, for one more: the rounds found
        // nothing to tell a rate by, so the rest at once.
        assert_eq!(rounds.next_round(), Some(words(58, 58)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // Fewer matches expected in all 61 eras than a page: the rest at once.
        let mut rounds = EraRounds::of_words(full(60), 5.0, 500, costs(1_000.0), 64);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
    }

    #[test]
    fn an_agents_word_rounds_afford_the_eras_their_teams_share_of_the_postings_pays_for() {
        // «1» among normal-priority tickets, as an agent whose teams hold 41% of the tickets:
        // 6,000 postings of «1» an era in all teams, the window read half of era 60.
        let start = RoundsStart {
            era: 60,
            share: 0.5,
        };
        let every_team = costs(6_000.0);
        let agents = every_team.of_teams(true, 0.41);
        assert!((agents.postings_per_era - 2_460.0).abs() < 1e-9);
        assert!(agents.fewer_teams);
        assert_eq!(every_team.of_teams(false, 0.41), every_team);

        let mut rounds = EraRounds::of_words(start, 0.0, 484, agents, 21);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        // 32 an era: 436 more lie within 14 eras, and 25 are paid for.
        rounds.found(48);
        assert_eq!(rounds.next_round(), Some(words(41, 58)));

        // Counted for every team, 9 are paid for: the documents' rounds of two eras.
        let mut rounds = EraRounds::of_words(start, 0.0, 484, every_team, 21);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        rounds.found(48);
        assert_eq!(rounds.next_round(), Some(range(57, 58)));
    }

    #[test]
    fn word_rounds_that_may_read_no_more_leave_the_eras_to_the_documents_rounds() {
        // «заказ» among tickets of no team: 12,000 postings an era, 25 matches an era.
        let mut rounds = EraRounds::of_words(full(60), 50.0, 495, costs(12_000.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
        rounds.found(100);
        // 395 more at 25 an era lie within 16 eras: rounds of the documents, two eras each.
        assert_eq!(rounds.next_round(), Some(range(55, 56)));
        rounds.found(50);
        assert_eq!(rounds.next_round(), Some(range(53, 54)));
    }

    #[test]
    fn era_rounds_stop_at_the_first_era() {
        assert_eq!(
            rounds(EraRounds::new(full(5), 1000.0, 500)),
            vec![range(4, 5), range(2, 3), range(0, 1)]
        );
        assert_eq!(
            rounds(EraRounds::new(full(2), 1000.0, 500)),
            vec![range(1, 2), range(0, 0)]
        );
    }

    #[test]
    fn rounds_that_would_read_most_eras_leave_them_to_one_query() {
        // An agent's «refunding» at 100,000 tickets: 50 matches an era, 500 wanted, and the
        // window's era 6 is a twenty-fifth read.
        let start = RoundsStart {
            era: 6,
            share: 0.04,
        };
        assert_eq!(
            rounds(EraRounds::new(start, 50.0, 500)),
            vec![EraRound::Rest]
        );
        // Half the eras or fewer: rounds.
        assert_eq!(
            EraRounds::new(start, 200.0, 500).next_round(),
            Some(range(5, 6))
        );
    }

    #[test]
    fn the_first_round_counts_the_newest_era_by_the_share_of_it_left() {
        let start = RoundsStart::at_number(100_005);
        assert_eq!(start.era, 6);
        assert_eq!(start.share, 1_702.0 / 16_384.0);
        // A supervisor's «refunding»: 1,120 matches an era, 388 wanted. A whole era would
        // hold them and a quarter more; a tenth of one does not, so the first round reads two.
        let mut rounds = EraRounds::of_words(start, 1120.0, 388, costs(1120.0), 64);
        assert_eq!(rounds.next_round(), Some(words(5, 6)));
        let mut whole = EraRounds::of_words(full(6), 1120.0, 388, costs(1120.0), 64);
        assert_eq!(whole.next_round(), Some(words(6, 6)));
        // 120 found in 1.1 eras: the rate is 108 an era, not 60, and the 268 still wanted
        // need 2.5 eras, 3.1 with a quarter more: 4.
        rounds.found(120);
        assert_eq!(rounds.next_round(), Some(words(1, 4)));
    }

    #[test]
    fn an_era_rounds_query_keeps_the_other_terms() {
        assert_eq!(
            range(3, 4).with(Some("'TNONE' | 'T1'")).as_deref(),
            Some("('TNONE' | 'T1') & ('E4' | 'E3')")
        );
        assert_eq!(range(3, 4).with(None).as_deref(), Some("('E4' | 'E3')"));
        assert_eq!(
            EraRound::Rest.with(Some("'SOPEN'")).as_deref(),
            Some("'SOPEN'")
        );
        assert_eq!(EraRound::Rest.with(None), None);
    }

    fn window(word_matches: i64, visible_matches: i64, documents: f64) -> WindowCounts {
        WindowCounts {
            tried: 4096,
            word_matches,
            visible_matches,
            documents,
        }
    }

    #[test]
    fn a_word_the_agent_mostly_may_not_see_is_asked_of_the_index() {
        // Delivery and VIP searching «refunding» among a million tickets: 7% of the documents
        // match, 0.4% are theirs.
        assert!(!window(300, 17, 1_000_000.0).keep_walking());
        assert!(
            !window(300, 0, 1_000_000.0).keep_walking(),
            "nothing visible seen"
        );
    }

    #[test]
    fn a_word_common_among_the_agents_tickets_is_walked_on() {
        // Nearly enough matches in the window: a few more documents finish the page.
        assert!(window(3000, 480, 1_000_000.0).keep_walking());
        // One in ten documents visible: the walk reads about 1,000 more for the last 100; the
        // index would fetch about 100,000 matches.
        assert!(window(1600, 400, 1_000_000.0).keep_walking());
    }

    #[test]
    fn a_word_in_one_document_of_fourteen_is_asked_of_the_index_an_era_at_a_time() {
        let first_window = |matches| WindowCounts {
            tried: 1024,
            word_matches: matches,
            visible_matches: matches,
            documents: 1_000_000.0,
        };
        // A supervisor's «refunding» among a million tickets: the walk would try about 6,000
        // more documents for the page; one era of the index reads ~1,200 postings and fetches
        // as many matches, worth about 2,100 documents tried.
        assert!(!first_window(73).keep_walking());
        // One document in seven: the walk tries about 2,500 more, the era is worth 4,200.
        assert!(first_window(146).keep_walking());
    }

    #[test]
    fn the_window_bears_out_an_estimate_of_its_share_of_matches_an_era() {
        // 290 matches in 4,096 documents: about 1,160 an era, 71,000 in 61 eras.
        let refunding = window(290, 290, 1_000_000.0);
        assert!(refunding.borne_out(72_891.0));
        // The planner expects five times as many: the older documents are unlike the window.
        assert!(!refunding.borne_out(360_000.0));
        assert!(!window(0, 0, 1_000_000.0).borne_out(50_000.0));
    }

    #[test]
    fn a_walk_is_never_counted_past_the_oldest_document() {
        // 36 documents left, all matching the word: walking them all costs 36; asking the index
        // costs 37.8 when half are visible and 24.3 when a quarter are.
        let small = |visible| WindowCounts {
            tried: 4,
            word_matches: 4,
            visible_matches: visible,
            documents: 40.0,
        };
        assert!(small(2).keep_walking());
        assert!(!small(1).keep_walking());
    }
}
