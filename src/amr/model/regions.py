"""The Azure regions amr accepts as a ``location``: the one list behind location validation, the
``/subscriptions/{id}/locations`` answer and the display-name lookups clients make ("East US").

amr runs every database on this machine whatever its location; the location is a label that tools
written for Azure must find valid. The list holds Azure's public physical regions with the facts ARM
publishes for each (display names, geography, coordinates, paired region).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """One Azure region as ARM describes it."""

    name: str  # the URL form: "eastus"
    display_name: str  # "East US"
    geography_group: str  # "US", "Europe", "Asia Pacific" ...
    geography: str  # "United States"
    physical_location: str  # "Virginia"
    latitude: str  # ARM publishes coordinates as strings
    longitude: str
    paired_region: str = ""  # the name of its pair; "" when it has none
    recommended: bool = True  # ARM's regionCategory: Recommended, else Other

    @property
    def regional_display_name(self) -> str:
        return f"({self.geography_group}) {self.display_name}"


_US, _EU, _AP = "US", "Europe", "Asia Pacific"

REGIONS: tuple[Region, ...] = (
    Region("eastus", "East US", _US, "United States", "Virginia", "37.3719", "-79.8164", "westus"),
    Region("eastus2", "East US 2", _US, "United States", "Virginia", "36.6681", "-78.3889", "centralus"),
    Region("southcentralus", "South Central US", _US, "United States", "Texas", "29.4167", "-98.5", "northcentralus"),
    Region("westus2", "West US 2", _US, "United States", "Washington", "47.233", "-119.852", "westcentralus"),
    Region("westus3", "West US 3", _US, "United States", "Phoenix", "33.448376", "-112.074036", "eastus"),
    Region("centralus", "Central US", _US, "United States", "Iowa", "41.5908", "-93.6208", "eastus2"),
    Region("northcentralus", "North Central US", _US, "United States", "Illinois", "41.8819", "-87.6278",
           "southcentralus", recommended=False),
    Region("westus", "West US", _US, "United States", "California", "37.783", "-122.417", "eastus", recommended=False),
    Region("westcentralus", "West Central US", _US, "United States", "Wyoming", "40.89", "-110.234", "westus2",
           recommended=False),
    Region("canadacentral", "Canada Central", "Canada", "Canada", "Toronto", "43.653", "-79.383", "canadaeast"),
    Region("canadaeast", "Canada East", "Canada", "Canada", "Quebec", "46.817", "-71.217", "canadacentral",
           recommended=False),
    Region("mexicocentral", "Mexico Central", "Mexico", "Mexico", "Querétaro State", "20.588818", "-100.389888"),
    Region("brazilsouth", "Brazil South", "South America", "Brazil", "Sao Paulo State", "-23.55", "-46.633",
           "southcentralus"),
    Region("northeurope", "North Europe", _EU, "Europe", "Ireland", "53.3478", "-6.2597", "westeurope"),
    Region("westeurope", "West Europe", _EU, "Europe", "Netherlands", "52.3667", "4.9", "northeurope"),
    Region("swedencentral", "Sweden Central", _EU, "Sweden", "Gävle", "60.67488", "17.14127"),
    Region("uksouth", "UK South", _EU, "United Kingdom", "London", "50.941", "-0.799", "ukwest"),
    Region("ukwest", "UK West", _EU, "United Kingdom", "Cardiff", "53.427", "-3.084", "uksouth", recommended=False),
    Region("francecentral", "France Central", _EU, "France", "Paris", "46.3772", "2.373"),
    Region("germanywestcentral", "Germany West Central", _EU, "Germany", "Frankfurt", "50.110924", "8.682127"),
    Region("italynorth", "Italy North", _EU, "Italy", "Milan", "45.46888", "9.18109"),
    Region("norwayeast", "Norway East", _EU, "Norway", "Norway", "59.913868", "10.752245"),
    Region("polandcentral", "Poland Central", _EU, "Poland", "Warsaw", "52.23334", "21.01666"),
    Region("spaincentral", "Spain Central", _EU, "Spain", "Madrid", "40.4259", "-3.4209"),
    Region("switzerlandnorth", "Switzerland North", _EU, "Switzerland", "Zurich", "47.451542", "8.564572"),
    Region("southafricanorth", "South Africa North", "Africa", "South Africa", "Johannesburg", "-25.73134",
           "28.21837"),
    Region("uaenorth", "UAE North", "Middle East", "UAE", "Dubai", "25.266666", "55.316666"),
    Region("qatarcentral", "Qatar Central", "Middle East", "Qatar", "Doha", "25.551462", "51.439327"),
    Region("israelcentral", "Israel Central", "Middle East", "Israel", "Israel", "31.2655698", "33.4506633"),
    Region("australiaeast", "Australia East", _AP, "Australia", "New South Wales", "-33.86", "151.2094",
           "australiasoutheast"),
    Region("australiasoutheast", "Australia Southeast", _AP, "Australia", "Victoria", "-37.8136", "144.9631",
           "australiaeast", recommended=False),
    Region("centralindia", "Central India", _AP, "India", "Pune", "18.5822", "73.9197", "southindia"),
    Region("southindia", "South India", _AP, "India", "Chennai", "12.9822", "80.1636", "centralindia",
           recommended=False),
    Region("eastasia", "East Asia", _AP, "Asia Pacific", "Hong Kong", "22.267", "114.188", "southeastasia"),
    Region("southeastasia", "Southeast Asia", _AP, "Asia Pacific", "Singapore", "1.283", "103.833", "eastasia"),
    Region("japaneast", "Japan East", _AP, "Japan", "Tokyo, Saitama", "35.68", "139.77", "japanwest"),
    Region("japanwest", "Japan West", _AP, "Japan", "Osaka", "34.6939", "135.5022", "japaneast", recommended=False),
    Region("koreacentral", "Korea Central", _AP, "Korea", "Seoul", "37.5665", "126.978", "koreasouth"),
    Region("koreasouth", "Korea South", _AP, "Korea", "Busan", "35.1796", "129.0756", "koreacentral",
           recommended=False),
    Region("newzealandnorth", "New Zealand North", _AP, "New Zealand", "Auckland", "-36.84853", "174.76349"),
)  # fmt: skip
